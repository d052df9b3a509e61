"""Personnel controls (PER): participants vetted and trained, separation of duties."""

from __future__ import annotations

from datetime import date

from ceremony.compliance.controls.seats import SEAT_ROLES, seats_of
from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence
from ceremony.record.revocations import revocations


# --- personnel -------------------------------------------------------------------------------
def vetted_and_trained(ev: Evidence, c: Checker) -> None:
    seats = 0
    for cer in ev.ceremonies:
        day = cer.day
        for seat, pid in seats_of(cer):
            seats += 1
            person = ev.register.people.get(pid)
            subject = f"ceremony {cer.ceremony_id}"
            if person is None:
                c.fail(subject, f"unregistered:{pid}", f"{pid} ({seat}) is not in the participant register")
                continue
            if not set(SEAT_ROLES[seat]) & set(person.roles):
                c.fail(subject, f"role:{pid}", f"{pid} sat as {seat} without that registered role")
            for what, until in (("vetting", person.vetting_expires), ("training", person.training_expires)):
                if day is not None and date.fromisoformat(until) < day:
                    c.fail(subject, f"{what}:{pid}", f"{pid}'s {what} expired {until}, before the ceremony on {day}")
    c.checked(f"{seats} seats at {len(ev.ceremonies)} ceremonies")


def separation_of_duties(ev: Evidence, c: Checker) -> None:
    for revoked in revocations(ev.ws.inventory):
        if revoked.requested_by == revoked.approved_by:
            c.fail(
                f"revocation {revoked.serial}",
                "self-approved",
                f"{revoked.requested_by} approved their own revocation request",
            )
    for cer in ev.ceremonies:
        for seat, pid in seats_of(cer):
            person = ev.register.people.get(pid)
            if person and "auditor" in person.roles and seat != "witnesses":
                c.fail(f"ceremony {cer.ceremony_id}", f"auditor:{pid}", f"auditor {pid} held an operational seat")
        approvers = set(cer.start.get("approved_by") or [])
        if approvers and approvers <= {cer.seats.get("administrator")}:
            c.fail(f"ceremony {cer.ceremony_id}", "self-approved", "the file was approved only by its administrator")
    c.checked("revocations, ceremony seats and approvals")
