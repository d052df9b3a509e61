"""Notebook 70's calendar: the table of what falls due, the timeline PNG (write-once), and the cell's output."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ceremony.compliance.calendar import Calendar, CalendarItem
from ceremony.errors import CeremonyError, InputError
from ceremony.issue.crl import publish_crl
from ceremony.record.workspace import Workspace
from ceremony.reporting import calendar_plots
from ceremony.reporting import inventory_plots as plots
from tests.support.calendar_registers import day_from, set_people, write_registers

AS_OF = datetime(2027, 3, 10, 12, 0, tzinfo=timezone.utc)
SOFTWARE = pytest.mark.parametrize("key_store_kind", ["software"])  # the calendar reads no key: one store will do


def _calendar() -> Calendar:
    items = (
        CalendarItem(date(2027, 3, 1), "training-expiry", "person alice", "overdue", "RFC 3647 5.3", "Alice"),
        CalendarItem(date(2027, 3, 17), "crl-next-update", "crl issuing", "due soon", "policy: x"),
        CalendarItem(date(2027, 9, 14), "assessment-due", "annual assessment", "later", "policy: y", "AA-1"),
    )
    return Calendar(AS_OF, date(2028, 3, 10), items)


def test_the_table_has_one_row_per_item_in_words() -> None:
    table = calendar_plots.calendar_table(_calendar())
    assert list(table.columns) == ["date", "status", "kind", "subject", "source", "detail"]
    assert table.values.tolist() == [
        [date(2027, 3, 1), "overdue", "training expires", "person alice", "RFC 3647 5.3", "Alice"],
        [date(2027, 3, 17), "due soon", "CRL nextUpdate", "crl issuing", "policy: x", ""],
        [date(2027, 9, 14), "later", "annual assessment due", "annual assessment", "policy: y", "AA-1"],
    ]


def test_the_timeline_is_a_write_once_png(tmp_path: Path) -> None:
    path = calendar_plots.calendar_png(_calendar(), tmp_path / "calendar.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(CeremonyError):
        calendar_plots.calendar_png(_calendar(), path)


def test_an_empty_calendar_still_draws(tmp_path: Path) -> None:
    empty = Calendar(AS_OF, date(2028, 3, 10), ())
    assert calendar_plots.calendar_png(empty, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert calendar_plots.calendar_table(empty).empty


@SOFTWARE
def test_the_cell_shows_the_workspaces_calendar_as_of_the_explorers_date(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    ws = ca_workspace
    now = ws.clock.now()
    publish_crl(ws, "issuing", by="bob")
    set_people(ws.root, alice=(day_from(now, 400), day_from(now, 20)))
    write_registers(ws.root, now)
    ws.close()
    later = (now + timedelta(days=8)).date().isoformat()
    x = plots.explore(ws.root, as_of=later, out_dir=tmp_path / "out")
    shown = calendar_plots.draw_calendar(ws.root, x)
    assert shown.pictures == [tmp_path / "out" / "calendar.png"]
    assert shown.texts == [f"saved `{tmp_path / 'out' / 'calendar.png'}`; 5 items, **1 overdue**"]
    assert shown.table[["status", "subject"]].values.tolist() == [
        ["overdue", "crl issuing"],
        ["due soon", "AA-1-F1"],
        ["due soon", "person alice"],
        ["later", "s1spki-cp 1.2"],
        ["later", "annual assessment"],
    ]
    with pytest.raises(InputError, match="--until must be an ISO date"):
        calendar_plots.calendar_of(ws.root, x, until="someday")


@SOFTWARE
def test_what_is_not_on_the_calendar_is_said_in_the_cell(ca_workspace: Workspace, tmp_path: Path) -> None:
    ca_workspace.close()
    x = plots.explore(ca_workspace.root, out_dir=tmp_path / "out")
    shown = calendar_plots.draw_calendar(ca_workspace.root, x, until=date(2060, 1, 1))
    assert shown.texts[1:] == [
        "Not on the calendar: documents register: the workspace keeps no documents register (registers/documents.yaml)",
        "Not on the calendar: assessments register: the workspace keeps no assessments register "
        "(registers/assessments.yaml)",
    ]
    assert {"CA root", "CA issuing"} <= set(shown.table["subject"])
