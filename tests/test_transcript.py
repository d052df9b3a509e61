"""The operations journal: hash chain appends, verifies, and names the first broken line."""

from __future__ import annotations

import json
from pathlib import Path

from ceremony.transcript import GENESIS, Journal, verify_chain


def _journal(tmp_path: Path, n: int = 3) -> Journal:
    journal = Journal(tmp_path / "journal.jsonl")
    for i in range(n):
        journal.append("test.event", {"n": i})
    return journal


def test_chain_links_and_verifies(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    entries = journal.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == GENESIS and entries[1]["prev"] == entries[0]["hash"]
    status = journal.verify()
    assert status.ok and status.entries == 3 and status.head == entries[-1]["hash"]


def test_edited_line_is_named(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    lines = journal.path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["n"] = 99
    lines[1] = json.dumps(entry)
    journal.path.write_text("\n".join(lines) + "\n")
    status = verify_chain(journal.path)
    assert status.error == "line 2: hash does not match its content"


def test_removed_line_is_named(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    lines = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert verify_chain(journal.path).error == "line 2: sequence 3 after 1"


def test_append_continues_after_reopen(tmp_path: Path) -> None:
    _journal(tmp_path, 2)
    again = Journal(tmp_path / "journal.jsonl")
    again.append("later", {})
    assert again.verify().ok and again.verify().entries == 3
