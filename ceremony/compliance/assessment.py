"""Running the control checks: findings with stable ids, waivers, and the verdict the rule prescribes.

Every control in the catalogue yields at least one finding: ``pass``, ``fail``, ``not-applicable``,
``indeterminate`` (the evidence cannot decide; the finding says why) or ``fatal`` (the check itself
crashed: never silence). A waiver marks matching findings waived without removing them; waived
findings do not count towards the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ceremony.compliance.controls import CHECKS
from ceremony.compliance.findings import Checker, ControlFinding
from ceremony.compliance.sources import Evidence, MissingRegister
from ceremony.model.catalogue import Catalogue, Control
from ceremony.model.policy import VerdictRule


def run_control(control: Control, ev: Evidence) -> list[ControlFinding]:
    checker = Checker(control)
    if not set(control.applies_to) & ev.scope:
        checker.not_applicable(
            f"applies to {' and '.join(control.applies_to)} S1SPs; this workspace runs "
            f"{' and '.join(sorted(ev.scope)) or 'neither'}"
        )
        return checker.findings
    fn = CHECKS.get(control.id)
    if fn is None:
        checker._add("fatal", "", "no-check", "no check is registered for this control", ())
        return checker.findings
    try:
        fn(ev, checker)
    except MissingRegister as exc:
        checker.indeterminate("", "no-register", exc.message)
    except Exception as exc:  # noqa: BLE001 - a crashing check is a FATAL finding, never silence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        checker._add("fatal", "", "crashed", f"the check crashed: {type(exc).__name__}: {first}"[:300], ())
    if not checker.findings:
        summary = "; ".join(checker.looked_at) or "nothing to examine"
        checker._add("pass", "", "pass", summary, ())
    return checker.findings


def run_checks(catalogue: Catalogue, ev: Evidence) -> list[ControlFinding]:
    findings: list[ControlFinding] = []
    for control in catalogue.controls:
        findings += run_control(control, ev)
    return apply_waivers(findings, ev)


def apply_waivers(findings: list[ControlFinding], ev: Evidence) -> list[ControlFinding]:
    waivers = ev.registers["waivers"].waivers
    today = ev.as_of.date()
    out = []
    for f in findings:
        match = next(
            (
                w
                for w in waivers
                if w.control == f.control
                and (w.subject is None or w.subject == f.subject)
                and f.outcome in ("fail", "indeterminate")
                and date.fromisoformat(w.expires) >= today
            ),
            None,
        )
        if match is not None:
            f = replace(f, waived={"reason": match.reason, "approved_by": match.approved_by, "expires": match.expires})
        out.append(f)
    return out


@dataclass
class VerdictResult:
    verdict: str
    because: str
    rule: int
    counted: dict[str, int] = field(default_factory=dict)


def verdict(findings: list[ControlFinding], rules: list[VerdictRule]) -> VerdictResult:
    """The first rule a finding that is not waived meets; the last (unconditional) rule otherwise."""
    live = [f for f in findings if f.waived is None]
    counted: dict[str, int] = {}
    for f in findings:
        key = "waived" if f.waived else f.outcome
        counted[key] = counted.get(key, 0) + 1
    for number, rule in enumerate(rules, start=1):
        when = rule.when
        if not when.outcome and not when.severity:
            return VerdictResult(rule.verdict, rule.because, number, counted)
        if any(
            (not when.outcome or f.outcome in when.outcome) and (not when.severity or f.severity in when.severity)
            for f in live
        ):
            return VerdictResult(rule.verdict, rule.because, number, counted)
    raise ValueError("the verdict rules end without an unconditional rule")


#: Outcomes from worst to best: a control shows the worst of its findings that are not waived.
SEVERITY_ORDER = ("fatal", "fail", "indeterminate", "pass", "not-applicable")


def control_table(findings: list[ControlFinding], catalogue: Catalogue) -> list[dict[str, Any]]:
    """One row per control: its outcome (the worst finding not waived; "waived" when every problem is),
    how many findings it has, and the clause it cites."""
    rows = []
    for control in catalogue.controls:
        mine = [f for f in findings if f.control == control.id]
        live = [f.outcome for f in mine if f.waived is None]
        outcome = min(live, key=SEVERITY_ORDER.index) if live else "waived"
        rows.append({"control": control.id, "title": control.title, "severity": control.severity,
                     "outcome": outcome, "findings": len(mine), "cites": control.policy_ref})  # fmt: skip
    return rows


def compare(current: list[ControlFinding], previous: list[dict[str, Any]]) -> dict[str, list[str]]:
    """New, resolved and persisting problems (fail, indeterminate, fatal) against a previous pack's findings."""
    bad = ("fail", "indeterminate", "fatal")
    now = {f.id for f in current if f.outcome in bad}
    before = {str(f["id"]) for f in previous if f.get("outcome") in bad}
    return {"new": sorted(now - before), "resolved": sorted(before - now), "persisting": sorted(now & before)}
