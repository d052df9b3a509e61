"""Registers with a history: each register file's hash goes into the journal with who changed it.

The participant register (``people.yaml``) and the registers under ``registers/`` are plain files an
administrator edits. Editing one is not itself an event, so the workbench records it: ``ceremony registers
record --by PERSON`` journals every register whose content differs from its last record (its SHA-256 and,
for people.yaml, the ids it lists), and the checks (GOV-06) fail any register that reads differently from
its last record, a waiver approved by the person who recorded it, and a person who acted before the
register listed them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ceremony.errors import InputError
from ceremony.fs import read_regular
from ceremony.model.events import Event, RegisterRecord
from ceremony.record.workspace import Workspace

PEOPLE = "people.yaml"
#: Registers are small documents; a bigger file is not one.
REGISTER_LIMIT = 1 << 20
#: Who may put a register change on record.
RECORDERS = frozenset({"administrator", "compliance-officer"})


def register_files(root: Path) -> list[str]:
    """The workspace's register files, relative to it: people.yaml, then registers/*.yaml by name."""
    found = [PEOPLE] if (root / PEOPLE).is_file() else []
    folder = root / "registers"
    if folder.is_dir():
        found += [f"registers/{p.name}" for p in sorted(folder.glob("*.yaml"))]
    return found


def register_digest(root: Path, relative: str) -> str:
    return hashlib.sha256(read_regular(root / relative, REGISTER_LIMIT, "register")).hexdigest()


def _people_ids(root: Path) -> list[str]:
    from ceremony.model.people import load_register

    return sorted(load_register(root / PEOPLE).people)


def last_records(journal: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each register's last ``register.record`` entry."""
    return {str(e.get("register")): e for e in journal if e.get("event") == Event.REGISTER_RECORD}


@dataclass(frozen=True)
class Recorded:
    register: str
    sha256: str
    changed: bool


def record_registers(ws: Workspace, *, by: str, reason: str) -> list[Recorded]:
    """Journal every register whose content differs from its last record, as recorded by ``by`` (a
    registered administrator or compliance officer). Returns every register with whether it was new."""
    from ceremony.model.people import load_register

    people_path = ws.root / PEOPLE
    if not people_path.is_file():
        raise InputError(f"{people_path}: no participant register; write it before recording registers")
    register = load_register(people_path)
    person = register.people.get(by)
    if person is None or not RECORDERS & set(person.roles):
        raise InputError(f"--by: {by} is not registered as an administrator or compliance officer in {PEOPLE}")
    if not reason.strip():
        raise InputError("--reason: say what changed and why")
    previous = last_records(ws.journal.entries())
    out: list[Recorded] = []
    for relative in register_files(ws.root):
        digest = register_digest(ws.root, relative)
        changed = previous.get(relative, {}).get("sha256") != digest
        if changed:
            ws.journal.append(
                RegisterRecord(
                    register=relative,
                    sha256=digest,
                    by=by,
                    reason=reason.strip(),
                    people=_people_ids(ws.root) if relative == PEOPLE else None,
                )
            )
        out.append(Recorded(relative, digest, changed))
    return out
