"""What a cell shows, as a value: its parts by kind, and the report's escaped tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ceremony.reporting.cells import MISSING, REPORT_STYLE, WIDE_COLUMNS, Html, Shown, cell_text, report_html


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


def test_report_tables_print_a_dash_for_what_is_missing_whole_counts_and_formatted_times() -> None:
    frame = pd.DataFrame(
        {
            "issuer_ca": ["s1sp-root", None],
            "valid": [3.0, float("nan")],
            "sealed_at": [pd.Timestamp("2026-12-01T10:00:00+01:00"), pd.NaT],
            "rehearsal": [True, False],
            "evidence": [["a.jsonl", "b.jsonl"], []],
        }
    )
    html = report_html(frame)
    assert "<th>issuer ca</th>" in html and '<th class="num">valid</th>' in html  # plain labels
    assert "<td>s1sp-root</td>" in html and '<td class="num">3</td>' in html
    assert '<td class="when">2026-12-01 09:00 UTC</td>' in html and "<td>yes</td><td>a.jsonl, b.jsonl</td>" in html
    assert html.count(f"<td>{MISSING}</td>") == 3 and f'<td class="num">{MISSING}</td>' in html
    for raw in ("NaN", "NaT", "None", "3.0", "nan"):
        assert raw not in html, raw
    assert 'class="table-wide"' not in html


def test_a_table_wider_than_a_portrait_page_is_marked_for_a_landscape_one() -> None:
    wide = pd.DataFrame([list(range(WIDE_COLUMNS + 1))], columns=[f"c{i}" for i in range(WIDE_COLUMNS + 1)])
    assert '<div class="table-wide"><table' in report_html(wide)
    assert 'class="table-wide"' not in report_html(wide.iloc[:, :WIDE_COLUMNS])


def test_cell_text() -> None:
    assert [cell_text(v) for v in (None, float("nan"), pd.NaT, pd.NA, np.float64(2.0), 2.5, np.int64(1234))] == [
        MISSING, MISSING, MISSING, MISSING, "2", "2.50", "1,234"
    ]  # fmt: skip
    assert [cell_text(v) for v in (np.bool_(False), date(2027, 6, 30), [], "-")] == ["no", "2027-06-30", MISSING, "-"]


def test_an_html_block_is_shown_as_html_and_kept_apart_from_markdown() -> None:
    shown = Shown(("text", Html("<p>block</p>")))
    assert shown.texts == ["text"] and shown.blocks == ["<p>block</p>"]
