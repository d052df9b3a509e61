"""What one notebook cell shows, as a value: Markdown text, HTML blocks, PNG files and tables, in order; and the
evidence report's tables as it prints them (missing values as a dash, counts as integers, dates formatted)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

#: The evidence report's tables on screen (the print stylesheet, templates/print.css, sets them on paper).
REPORT_STYLE = (
    "<style>.report-table td, .report-table th { text-align: left; vertical-align: top; } "
    ".report-table td.num { text-align: right; }</style>"
)

#: What the report prints for a missing value (never NaN, NaT or None).
MISSING = "\u2014"
#: Tables with more columns than this go on a landscape page of their own in print (eleven short columns, the CA
#: lineage's, still fit a portrait A4 page at the report's 7 pt).
WIDE_COLUMNS = 11


@dataclass(frozen=True)
class Html:
    """A block of HTML the package built (every value in it escaped): findings and deviations set as paragraphs."""

    text: str


Part: TypeAlias = str | Html | Path | pd.DataFrame
"""A piece of a cell's output: Markdown text (``str``), an HTML block (:class:`Html`), a PNG file (``Path``) or a
table (``DataFrame``)."""


def missing(value: Any) -> bool:
    """Whether ``value`` is absent: None, NaN, NaT or pandas' NA (a list or a string never is)."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, str, bytes)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cell_text(value: Any) -> str:
    """One value as the report prints it: a dash when missing, ``yes``/``no``, whole numbers without a decimal
    point, times to the minute in UTC, lists joined with commas."""
    if missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (pd.Timestamp, datetime)):
        stamp = pd.Timestamp(value)
        return stamp.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC") if stamp.tzinfo else f"{stamp:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return f"{int(number):,}" if number.is_integer() else f"{number:,.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(v) for v in value) or MISSING
    return str(value)


#: A date or a time as :func:`cell_text` prints it: kept on one line in print.
_WHEN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}( UTC)?)?")
#: A word longer than this (an identifier, a path) may be broken anywhere in print; shorter ones only at a hyphen.
_LONG_WORD = 24


def _cell_class(text: str, align: str) -> str:
    """A cell's class in print: a number right-aligned, a date kept on one line, a long identifier breakable."""
    if align:
        return align
    if _WHEN.fullmatch(text):
        return ' class="when"'
    return ' class="long"' if any(len(word) > _LONG_WORD for word in text.split()) else ""


def _numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column)) and not pd.api.types.is_bool_dtype(column)


def report_html(frame: pd.DataFrame) -> str:
    """A table as the evidence report prints it: escaped HTML without the index, plain column labels, every value
    through :func:`cell_text`, numbers right-aligned; a table wider than :data:`WIDE_COLUMNS` columns is marked
    to go on a landscape page."""
    numeric = [_numeric(frame[c]) if isinstance(frame[c], pd.Series) else False for c in frame.columns]
    align = [' class="num"' if num else "" for num in numeric]
    head = "".join(
        f"<th{a}>{html.escape(str(c).replace('_', ' '))}</th>" for c, a in zip(frame.columns, align, strict=True)
    )
    rows = []
    for values in frame.itertuples(index=False, name=None):
        texts = [cell_text(v) for v in values]
        classes = [_cell_class(t, a) for t, a in zip(texts, align, strict=True)]
        cells = "".join(f"<td{c}>{html.escape(t)}</td>" for t, c in zip(texts, classes, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    table = f'<table class="report-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    if len(frame.columns) > WIDE_COLUMNS:
        table = f'<div class="table-wide">{table}</div>'
    return REPORT_STYLE + table


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

    @property
    def blocks(self) -> list[str]:
        """The HTML blocks' text."""
        return [p.text for p in self.parts if isinstance(p, Html)]

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, Image, Markdown, display

        shown: list[object] = []
        for part in self.parts:
            if isinstance(part, Path):
                shown.append(Image(filename=str(part)))  # type: ignore[no-untyped-call,unused-ignore]
            elif isinstance(part, str):
                shown.append(Markdown(part))  # type: ignore[no-untyped-call,unused-ignore]
            elif isinstance(part, Html):
                shown.append(HTML(part.text))  # type: ignore[no-untyped-call,unused-ignore]
            else:
                shown.append(HTML(report_html(part)) if self.report else part)  # type: ignore[no-untyped-call,unused-ignore]
        display(*shown)  # type: ignore[no-untyped-call,unused-ignore]
