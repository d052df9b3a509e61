"""Register records: each changed register journalled with who is answerable, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import InputError
from ceremony.model.events import Event
from ceremony.record.registers import last_records, record_registers, register_files
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.ceremony_files import DATA, write_register


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    write_register(ws.root)
    (ws.root / "registers").mkdir()
    (ws.root / "registers" / "hsms.yaml").write_bytes((DATA / "registers" / "hsms.yaml").read_bytes())
    return ws


def test_each_register_is_recorded_once_until_it_changes(ws: Workspace) -> None:
    assert register_files(ws.root) == ["people.yaml", "registers/hsms.yaml"]
    first = record_registers(ws, by="alice", reason="set-up")
    assert [(r.register, r.changed) for r in first] == [("people.yaml", True), ("registers/hsms.yaml", True)]
    assert [r.changed for r in record_registers(ws, by="alice", reason="nothing changed")] == [False, False]
    path = ws.root / "registers" / "hsms.yaml"
    path.write_text(path.read_text() + "# firmware checked\n")
    again = record_registers(ws, by="victor", reason="firmware note")
    assert [(r.register, r.changed) for r in again] == [("people.yaml", False), ("registers/hsms.yaml", True)]
    records = last_records(ws.journal.entries())
    assert (records["registers/hsms.yaml"]["by"], records["registers/hsms.yaml"]["reason"]) == (
        "victor",
        "firmware note",
    )
    assert "alice" in records["people.yaml"]["people"] and records["registers/hsms.yaml"]["people"] is None
    assert sum(e["event"] == Event.REGISTER_RECORD for e in ws.journal.entries()) == 3


@pytest.mark.parametrize(
    ("by", "reason", "message"),
    [
        ("bob", "x", "--by: bob is not registered as an administrator or compliance officer in people.yaml"),
        ("nobody", "x", "--by: nobody is not registered as an administrator or compliance officer in people.yaml"),
        ("alice", "  ", "--reason: say what changed and why"),
    ],
)
def test_only_an_administrator_or_compliance_officer_records_and_says_why(
    ws: Workspace, by: str, reason: str, message: str
) -> None:
    before = ws.journal.path.read_bytes()
    with pytest.raises(InputError) as caught:
        record_registers(ws, by=by, reason=reason)
    assert caught.value.message == message
    assert ws.journal.path.read_bytes() == before
