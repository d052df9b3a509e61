"""Logging controls (LOG): the journal intact, records retained."""

from __future__ import annotations

from datetime import timedelta

from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence, parse_time
from ceremony.model.events import Event


# --- logging ---------------------------------------------------------------------------------
def journal_intact(ev: Evidence, c: Checker) -> None:
    status = ev.journal_status
    if not status.ok:
        c.fail("journal", "chain", f"journal.jsonl: {status.error}", "journal.jsonl")
    times = [parse_time(e["time"]) for e in ev.journal]
    tolerance = timedelta(seconds=ev.policy.compliance.clock_tolerance_seconds)
    for before, after, entry in zip(times, times[1:], ev.journal[1:], strict=False):
        if after < before - tolerance:
            c.fail(
                "journal",
                f"clock:{entry.get('seq')}",
                f"entry {entry.get('seq')} is dated {before - after} before the one it follows",
            )
    c.checked(f"{len(ev.journal)} journal entries")


def retention(ev: Evidence, c: Checker) -> None:
    if not ev.journal or ev.journal[0].get("event") != Event.WORKSPACE_INIT:
        c.fail("journal", "pruned", "the journal does not begin with the workspace's creation: records were removed")
    for recorded in ev.ws.inventory.ceremonies():
        if not (ev.ws.root / recorded.transcript).is_file():
            c.fail(
                f"ceremony {recorded.ceremony_id}", "missing", f"transcript {recorded.transcript} is on record but gone"
            )
    created = parse_time(ev.journal[0]["time"]) if ev.journal else ev.as_of
    years = ev.policy.compliance.retention_years
    c.checked(
        f"records reach back to the workspace's creation {created:%Y-%m-%d} "
        f"({(ev.as_of - created).days} days; retention {years} years)"
    )
