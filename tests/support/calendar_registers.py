"""Registers for the calendar's tests (tests/compliance/test_calendar.py, tests/cli/test_calendar.py), dated from
the workspace's clock: people with chosen expiries, a document to review, an annual assessment with an open finding."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml


def day_from(as_of: datetime, offset: int) -> str:
    """The ISO date ``offset`` days from ``as_of``'s."""
    return (as_of.date() + timedelta(days=offset)).isoformat()


def write_registers(root: Path, as_of: datetime) -> None:
    """Registers dated from ``as_of``: a document due for review in 200 days (and a superseded one long past), the
    last annual assessment 100 days ago with an open finding due in 10 days."""
    registers = {
        "documents": {"schema_version": 1, "documents": [
            {"id": "s1spki-cp", "kind": "CP", "title": "S1SPKI CP", "version": "1.2", "status": "in-force",
             "pma_approval": {"ref": "PMA-1", "date": day_from(as_of, -100)}, "next_review": day_from(as_of, 200)},
            {"id": "s1spki-cp", "kind": "CP", "title": "S1SPKI CP", "version": "1.1", "status": "superseded",
             "next_review": day_from(as_of, -300)},
        ]},
        "assessments": {"schema_version": 1, "assessments": [
            {"id": "IA-S2", "type": "initial-stage-2", "date": day_from(as_of, -500), "assessor": "Wendy Walsh",
             "assessor_organisation": "Independent assessor", "outcome": "approved"},
            {"id": "AA-1", "type": "annual", "date": day_from(as_of, -100), "assessor": "Wendy Walsh",
             "assessor_organisation": "Independent assessor", "outcome": "approved with caveats",
             "remediation_plan": "RP-1",
             "findings": [{"id": "AA-1-F1", "summary": "bag log not countersigned", "status": "open",
                           "due": day_from(as_of, 10)},
                          {"id": "AA-1-F2", "summary": "closed long ago", "status": "closed",
                           "due": day_from(as_of, -50)}]},
        ]},
    }  # fmt: skip
    (root / "registers").mkdir(exist_ok=True)
    for name, content in registers.items():
        (root / "registers" / f"{name}.yaml").write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


def set_people(root: Path, **expiries: tuple[str, str]) -> None:
    """Only the people named, each with (vetting_expires, training_expires)."""
    path = root / "people.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["people"] = {pid: dict(data["people"][pid], vetting_expires=v, training_expires=t)
                      for pid, (v, t) in expiries.items()}  # fmt: skip
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
