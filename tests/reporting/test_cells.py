"""What a cell shows, as a value: its parts by kind, and the report's escaped tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ceremony.reporting.cells import REPORT_STYLE, Shown, report_html


def test_a_cell_value_sorts_its_parts_by_kind() -> None:
    table = pd.DataFrame({"control": ["KEY-01"], "outcome": ["fail"]})
    shown = Shown(("# Verdict", Path("figure.png"), table))
    assert shown.texts == ["# Verdict"] and shown.pictures == [Path("figure.png")]
    assert shown.table is table and shown.tables == [table]


def test_report_tables_are_escaped_without_an_index() -> None:
    html = report_html(pd.DataFrame({"finding": ["<script>alert(1)</script>"]}))
    assert html.startswith(REPORT_STYLE)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<th></th>" not in html  # no index column
