"""`ceremony calendar [--until DATE] [--json]` through main(): the table, the JSON object, the exit codes, and a bad
--until refused in one line with nothing changed."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.compliance.calendar import a_year_after
from ceremony.issue.crl import publish_crl
from ceremony.record.workspace import Workspace
from tests.support.calendar_registers import day_from, set_people, write_registers

SOFTWARE = pytest.mark.parametrize("key_store_kind", ["software"])  # the calendar reads no key: one store will do


@pytest.fixture
def estate(ca_workspace: Workspace) -> Path:
    """Root and issuing CA with the issuing CA's CRL; alice (training due in 20 days) and bob; the registers."""
    ws = ca_workspace
    now = ws.clock.now()
    publish_crl(ws, "issuing", by="bob")
    set_people(ws.root, alice=(day_from(now, 400), day_from(now, 20)), bob=(day_from(now, 500), day_from(now, 300)))
    write_registers(ws.root, now)
    ws.close()
    return ws.root


def _today(root: Path) -> date:
    ws = Workspace.open(root)
    try:
        return ws.clock.now().date()
    finally:
        ws.close()


@SOFTWARE
def test_the_json_object_lists_every_item_by_date(estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workspace", str(estate), "calendar", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["workspace", "as_of", "until", "items", "gaps"]
    assert out["workspace"] == str(estate) and out["gaps"] == []
    as_of = datetime.fromisoformat(out["as_of"])
    assert as_of.tzinfo is not None and out["until"] == a_year_after(as_of.date()).isoformat()
    items = out["items"]
    assert all(set(i) == {"date", "kind", "subject", "status", "source", "detail"} for i in items)
    dates = [date.fromisoformat(i["date"]) for i in items]
    assert dates == sorted(dates) and max(dates) <= date.fromisoformat(out["until"])
    assert [(i["kind"], i["subject"], i["status"]) for i in items] == [
        ("crl-next-update", "crl issuing", "due soon"),
        ("finding-due", "AA-1-F1", "due soon"),
        ("training-expiry", "person alice", "due soon"),
        ("document-review", "s1spki-cp 1.2", "later"),
        ("assessment-due", "annual assessment", "later"),
        ("training-expiry", "person bob", "later"),
    ]
    assert items[0]["source"] == "policy: revocation.crl_next_update_hours"


@SOFTWARE
def test_until_reaches_further(estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    until = (_today(estate) + timedelta(days=25 * 366)).isoformat()
    assert main(["--workspace", str(estate), "calendar", "--json", "--until", until]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["until"] == until
    kinds = {(i["kind"], i["subject"]) for i in out["items"]}
    assert {("ca-expiry", "CA root"), ("ca-renewal", "CA issuing"), ("vetting-expiry", "person bob")} <= kinds


@SOFTWARE
def test_the_table_flags_what_is_overdue_and_exits_1(estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workspace", str(estate), "calendar"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(": 6 items, 0 overdue") and len(lines) == 7
    assert not any("OVERDUE" in line for line in lines)
    set_people(estate, alice=("2020-01-01", "2020-01-02"), bob=("2099-01-01", "2099-01-01"))
    assert main(["--workspace", str(estate), "calendar"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].endswith(": 6 items, 2 overdue")
    assert lines[1:3] == [
        "2020-01-01  OVERDUE   vetting expires           person alice                  RFC 3647 5.3 [S]; people.yaml",
        "2020-01-02  OVERDUE   training expires          person alice                  RFC 3647 5.3 [S]; people.yaml",
    ]
    assert captured.err.splitlines() == [f"TEST WORKSPACE (not a live PKI): {estate}"]


@SOFTWARE
def test_what_is_not_on_the_calendar_is_said_and_exits_1(
    ca_workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_workspace.close()
    assert main(["--workspace", str(ca_workspace.root), "calendar"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        "calendar: not on the calendar: documents register: the workspace keeps no documents register "
        "(registers/documents.yaml)",
        "calendar: not on the calendar: assessments register: the workspace keeps no assessments register "
        "(registers/assessments.yaml)",
    ]


@SOFTWARE
@pytest.mark.parametrize("until", ["2027-02-30", "soon", "", "2026-11-30"])
def test_a_bad_until_is_one_line_exit_2_and_changes_nothing(
    estate: Path, until: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.stat().st_mtime_ns for p in estate.rglob("*") if p.is_file()}
    assert main(["--workspace", str(estate), "calendar", "--until", until]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("ceremony: --until must ") and f"(got {until!r})" in line
    assert {p: p.stat().st_mtime_ns for p in estate.rglob("*") if p.is_file()} == before
