"""Who sat where at a ceremony, and who a register id is: what the ceremony and personnel controls share."""

from __future__ import annotations

from ceremony.compliance.sources import CeremonyRecord, Evidence

OPERATIONAL = {"administrator", "operator", "custodian", "ra-officer", "approver"}
SEAT_ROLES = {
    "administrator": ("administrator",),
    "operators": ("operator",),
    "custodians": ("custodian",),
    "witnesses": ("witness", "auditor"),
}


def seats_of(c: CeremonyRecord) -> list[tuple[str, str]]:
    """(seat, person) for everyone seated at a ceremony."""
    seats = c.seats
    out = [("administrator", seats["administrator"])] if seats.get("administrator") else []
    return out + [(seat, pid) for seat in ("operators", "custodians", "witnesses") for pid in seats.get(seat, [])]


def person_key(ev: Evidence, pid: str) -> tuple[str, str]:
    """Who a register id is: the same name and organisation under two ids is one person."""
    person = ev.register.people.get(pid)
    return (person.name.casefold(), person.organisation.casefold()) if person else (pid, "?")
