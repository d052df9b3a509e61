"""Governance controls (GOV): approved documents, assessment cadence, remediation, incident notification, and
nothing overdue on the calendar."""

from __future__ import annotations

from datetime import date, timedelta

from ceremony.compliance.calendar import KINDS, workspace_calendar
from ceremony.compliance.controls.seats import OPERATIONAL
from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence, parse_time


# --- governance ------------------------------------------------------------------------------
def documents_approved(ev: Evidence, c: Checker) -> None:
    docs = [d for d in ev.registers["documents"].documents if d.status == "in-force"]
    for kind in ("CP",):
        if not any(d.kind == kind for d in docs):
            c.fail("document register", f"no-{kind}", f"no {kind} is in force")
    if not any(d.kind in ("CPS", "KMPS") for d in docs):
        c.fail("document register", "no-CPS", "no CPS or key management practice statement is in force")
    in_force = {f"{d.id} {d.version}" for d in docs}
    for d in docs:
        subject = f"{d.id} {d.version}"
        if d.pma_approval is None:
            c.fail(subject, "unapproved", f"{d.kind} {subject} is in force with no PMA approval on record")
        if date.fromisoformat(d.next_review) < ev.as_of.date():
            c.fail(subject, "review-overdue", f"{d.kind} {subject} was due for review on {d.next_review}")
        if d.kind in ("CPS", "KMPS") and d.implements not in in_force:
            c.fail(
                subject,
                "implements",
                f"{d.kind} {subject} implements {d.implements or 'nothing named'}, which is not a CP in force",
            )
    c.checked(f"{len(docs)} documents in force")


def assessment_cadence(ev: Evidence, c: Checker) -> None:
    done = ev.registers["assessments"].assessments
    kinds = {a.type for a in done}
    for stage in ("initial-stage-1", "initial-stage-2"):
        if stage not in kinds:
            c.fail("assessment register", f"missing-{stage}", f"no {stage.replace('-', ' ')} assessment on record")
    dated = [date.fromisoformat(a.date) for a in done if a.type in ("initial-stage-2", "annual")]
    months = ev.policy.compliance.annual_assessment_months
    if dated and (ev.as_of.date() - max(dated)).days > months * 31:
        c.fail(
            "assessment register",
            "annual-overdue",
            f"the last Initial Stage 2 or Annual assessment was on {max(dated)}; one is due every {months} months",
        )
    for a in done:
        staff = [
            pid
            for pid, p in ev.register.people.items()
            if p.name.casefold() == a.assessor.casefold() and set(p.roles) & OPERATIONAL
        ]
        if staff:
            c.fail(a.id, "assessor-operational", f"assessor {a.assessor} holds an operational role ({staff[0]})")
    c.checked(f"{len(done)} assessments; independence beyond the register needs the PMA's judgement")


def findings_remediated(ev: Evidence, c: Checker) -> None:
    for a in ev.registers["assessments"].assessments:
        if a.outcome == "approved with caveats" and not a.remediation_plan:
            c.fail(a.id, "no-plan", f"{a.id} was approved with caveats and has no remediation plan")
        for f in a.findings:
            if f.status == "open" and date.fromisoformat(f.due) < ev.as_of.date():
                c.fail(f.id, "overdue", f"assessment finding {f.id} ({f.summary}) is open past its due date {f.due}")
    c.checked("every assessment finding's status and due date")


def incidents_notified(ev: Evidence, c: Checker) -> None:
    limit = timedelta(hours=ev.policy.compliance.incident_notification_hours)
    serious = [i for i in ev.registers["incidents"].incidents if i.kind in ("key-compromise", "suspected-compromise")]
    for i in serious:
        detected = parse_time(i.detected_at)
        if i.pma_notified_at is None:
            c.fail(i.id, "not-notified", f"{i.kind} {i.id} was never notified to the PMA")
        elif parse_time(i.pma_notified_at) - detected > limit:
            c.fail(
                i.id, "late", f"{i.id} reached the PMA after {parse_time(i.pma_notified_at) - detected} (limit {limit})"
            )
        if i.recovery_key_used_at and (
            i.recovery_decision_at is None or parse_time(i.recovery_decision_at) > parse_time(i.recovery_key_used_at)
        ):
            c.fail(i.id, "no-decision", f"{i.id}: a recovery key was used before the PMA's recovery decision")
    c.checked(f"{len(serious)} compromise incidents")


def nothing_overdue(ev: Evidence, c: Checker) -> None:
    cal = workspace_calendar(ev)
    for item in cal.overdue:
        c.fail(item.subject, item.kind, f"{KINDS[item.kind]} {item.date}, now past ({item.detail}); {item.source}")
    for gap in cal.gaps:
        c.indeterminate(gap.source, "calendar-gap", f"{gap.source} is not on the calendar: {gap.reason}")
    soon = sum(1 for i in cal.items if i.status == "due soon")
    c.checked(f"{len(cal.items)} dates on the calendar to {cal.until}, {soon} due soon")
