"""What one notebook cell shows, as a value: Markdown text, PNG files and tables, in order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pandas as pd

#: The evidence report's tables: words are not broken mid-word and the first column stays on one line.
REPORT_STYLE = (
    "<style>.dataframe td, .dataframe th { overflow-wrap: normal; word-break: normal; text-align: left !important; } "
    ".dataframe td:first-child, .dataframe th { white-space: nowrap; }</style>"
)

Part: TypeAlias = str | Path | pd.DataFrame
"""A piece of a cell's output: Markdown text (``str``), a PNG file (``Path``) or a table (``DataFrame``)."""


def report_html(frame: pd.DataFrame) -> str:
    """A table as the evidence report prints it: escaped HTML without the index, in the report's style."""
    return REPORT_STYLE + str(frame.to_html(index=False, escape=True))


@dataclass(frozen=True)
class Shown:
    """The output of one cell, as a value the package builds and tests read; a notebook shows it by ending a
    cell with it (IPython's ``_ipython_display_`` protocol), so the cell holds no display logic."""

    parts: tuple[Part, ...]
    #: Tables as :func:`report_html` (the evidence report); otherwise pandas' own rendering.
    report: bool = False

    @property
    def tables(self) -> list[pd.DataFrame]:
        return [p for p in self.parts if isinstance(p, pd.DataFrame)]

    @property
    def table(self) -> pd.DataFrame:
        """The first table (a figure's data)."""
        return self.tables[0]

    @property
    def pictures(self) -> list[Path]:
        return [p for p in self.parts if isinstance(p, Path)]

    @property
    def texts(self) -> list[str]:
        return [p for p in self.parts if isinstance(p, str)]

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, Image, Markdown, display

        shown: list[object] = []
        for part in self.parts:
            if isinstance(part, Path):
                shown.append(Image(filename=str(part)))  # type: ignore[no-untyped-call,unused-ignore]
            elif isinstance(part, str):
                shown.append(Markdown(part))  # type: ignore[no-untyped-call,unused-ignore]
            else:
                shown.append(HTML(report_html(part)) if self.report else part)  # type: ignore[no-untyped-call,unused-ignore]
        display(*shown)  # type: ignore[no-untyped-call,unused-ignore]
