"""Running the checks: every control yields a finding, waivers mark without removing, and the verdict rules decide."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from ceremony.compliance.assessment import apply_waivers, compare, control_table, run_control, verdict
from ceremony.compliance.controls import CHECKS
from ceremony.compliance.findings import Checker, ControlFinding
from ceremony.compliance.sources import Evidence, MissingRegister
from ceremony.model.catalogue import Catalogue, Control, load_catalogue
from ceremony.model.policy import VerdictCondition, VerdictRule, load_policy
from ceremony.model.registers import Waiver, Waivers

AS_OF = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
RULES = load_policy().compliance.verdict
CATALOGUE = load_catalogue()


def _finding(
    control: str = "CER-08",
    outcome: str = "fail",
    subject: str = "",
    code: str = "c",
    severity: str = "major",
    **kw: Any,
) -> ControlFinding:
    return ControlFinding(control, outcome, subject, code, f"{outcome} {subject}", (), severity, **kw)  # type: ignore[arg-type]


def _evidence(*waivers: Waiver, scope: set[str] | None = None) -> Evidence:
    """Only what the functions under test read: the waivers register, the date, the scope."""
    ev = SimpleNamespace(
        registers={"waivers": Waivers(schema_version=1, waivers=list(waivers))}, as_of=AS_OF, scope=scope or {"pki"}
    )
    return ev  # type: ignore[return-value]


def _waiver(control: str = "CER-08", subject: str | None = None, expires: str = "2027-03-31", **kw: Any) -> Waiver:
    return Waiver(
        control=control,
        subject=subject,
        reason=kw.get("reason", "recordings are not kept in demos"),
        approved_by=kw.get("approved_by", "victor"),
        expires=expires,
    )


# --- waivers ---------------------------------------------------------------------------------
def test_a_waiver_marks_the_control_s_problems_and_keeps_them() -> None:
    findings = [_finding(subject="a"), _finding(outcome="indeterminate", subject="b"), _finding("CER-07", subject="a")]
    out = apply_waivers(findings, _evidence(_waiver()))
    assert len(out) == 3 and [f.subject for f in out] == ["a", "b", "a"]
    mark = {"reason": "recordings are not kept in demos", "approved_by": "victor", "expires": "2027-03-31"}
    assert [f.waived for f in out] == [mark, mark, None]
    assert [f.id for f in out] == [f.id for f in findings]


@pytest.mark.parametrize("outcome", ["pass", "not-applicable", "fatal"])
def test_a_waiver_never_covers_what_is_not_a_fail_or_indeterminate(outcome: str) -> None:
    (out,) = apply_waivers([_finding(outcome=outcome)], _evidence(_waiver()))
    assert out.waived is None


def test_a_waiver_with_a_subject_covers_only_that_subject() -> None:
    out = apply_waivers([_finding(subject="a"), _finding(subject="b")], _evidence(_waiver(subject="b")))
    assert [f.waived is not None for f in out] == [False, True]


@pytest.mark.parametrize(("expires", "waived"), [("2026-11-30", False), ("2026-12-01", True), ("2026-12-02", True)])
def test_a_waiver_holds_through_its_expiry_date_and_not_after(expires: str, waived: bool) -> None:
    (out,) = apply_waivers([_finding()], _evidence(_waiver(expires=expires)))
    assert (out.waived is not None) is waived


def test_the_first_waiver_that_matches_is_the_one_recorded() -> None:
    waivers = (
        _waiver(expires="2026-01-01", approved_by="old"),  # expired: skipped
        _waiver(subject="other", approved_by="elsewhere"),
        _waiver(approved_by="victor"),
        _waiver(approved_by="later"),
    )
    (out,) = apply_waivers([_finding(subject="a")], _evidence(*waivers))
    assert out.waived is not None and out.waived["approved_by"] == "victor"


def test_no_waivers_change_nothing() -> None:
    findings = [_finding(), _finding(outcome="pass")]
    assert apply_waivers(findings, _evidence()) == findings


# --- running one control ---------------------------------------------------------------------
CONTROL = CATALOGUE.get("CER-02")


def _run_with(monkeypatch: pytest.MonkeyPatch, check: Any, scope: set[str] | None = None) -> list[ControlFinding]:
    monkeypatch.setitem(CHECKS, CONTROL.id, check)
    return run_control(CONTROL, _evidence(scope=scope))


def test_a_check_that_reports_nothing_passes_with_what_it_examined(monkeypatch: pytest.MonkeyPatch) -> None:
    def check(ev: Evidence, checker: Checker) -> None:
        checker.checked("3 transcripts")
        checker.checked("their seals")

    (finding,) = _run_with(monkeypatch, check)
    assert (finding.outcome, finding.code, finding.message, finding.severity) == (
        "pass",
        "pass",
        "3 transcripts; their seals",
        "critical",
    )
    (quiet,) = _run_with(monkeypatch, lambda ev, checker: None)
    assert quiet.message == "nothing to examine"


def test_a_check_s_failures_are_its_findings_with_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def check(ev: Evidence, checker: Checker) -> None:
        checker.checked("1 transcript")
        checker.fail("transcript a", "chain_broken", "entry 3")

    assert [(f.outcome, f.code) for f in _run_with(monkeypatch, check)] == [("fail", "chain_broken")]


def test_a_missing_register_makes_the_control_indeterminate(monkeypatch: pytest.MonkeyPatch) -> None:
    def check(ev: Evidence, checker: Checker) -> None:
        raise MissingRegister("the workspace keeps no hsms register (registers/hsms.yaml)")

    (finding,) = _run_with(monkeypatch, check)
    assert (finding.outcome, finding.code) == ("indeterminate", "no-register")
    assert finding.message == "the workspace keeps no hsms register (registers/hsms.yaml)"


def test_a_crashing_check_is_a_fatal_finding_with_the_first_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def check(ev: Evidence, checker: Checker) -> None:
        checker.fail("transcript a", "chain_broken", "found before the crash")
        raise OSError("  transcripts/a.jsonl: unreadable\nsecond line  ")

    findings = _run_with(monkeypatch, check)
    assert [(f.outcome, f.code) for f in findings] == [("fail", "chain_broken"), ("fatal", "crashed")]
    assert findings[1].message == "the check crashed: OSError: transcripts/a.jsonl: unreadable"

    def long(ev: Evidence, checker: Checker) -> None:
        raise RuntimeError("x" * 1000)

    (fatal,) = _run_with(monkeypatch, long)
    assert len(fatal.message) == 300 and fatal.message.startswith("the check crashed: RuntimeError: xxx")

    def silent(ev: Evidence, checker: Checker) -> None:
        raise ValueError

    assert _run_with(monkeypatch, silent)[0].message == "the check crashed: ValueError: "


def test_a_control_without_a_registered_check_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(CHECKS, CONTROL.id)
    (finding,) = run_control(CONTROL, _evidence())
    assert (finding.outcome, finding.code, finding.message) == (
        "fatal",
        "no-check",
        "no check is registered for this control",
    )


def test_a_control_outside_the_scope_is_not_applicable_and_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    pki_only = Control.model_validate({**CONTROL.model_dump(), "applies_to": ["pki"]})

    def check(ev: Evidence, checker: Checker) -> None:
        raise AssertionError("not run")

    monkeypatch.setitem(CHECKS, CONTROL.id, check)
    (finding,) = run_control(pki_only, _evidence(scope={"symmetric"}))
    assert (finding.outcome, finding.code) == ("not-applicable", "n/a")
    assert finding.message == "applies to pki S1SPs; this workspace runs symmetric"


# --- the verdict -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("findings", "expected", "rule"),
    [
        ([], "approved", 4),
        ([_finding(outcome="pass"), _finding(outcome="not-applicable")], "approved", 4),
        ([_finding(severity="critical")], "not approved", 1),
        ([_finding(outcome="fatal", severity="minor")], "not approved", 2),
        ([_finding(severity="major")], "approved with caveats", 3),
        ([_finding(outcome="indeterminate", severity="critical")], "approved with caveats", 3),
        ([_finding(outcome="fatal"), _finding(severity="critical")], "not approved", 1),
    ],
    ids=["nothing", "passes", "critical-fail", "fatal", "major-fail", "critical-indeterminate", "first-rule-wins"],
)
def test_the_first_rule_a_finding_meets_decides(findings: list[ControlFinding], expected: str, rule: int) -> None:
    result = verdict(findings, RULES)
    assert (result.verdict, result.rule, result.because) == (expected, rule, RULES[rule - 1].because)


def test_waived_findings_do_not_count_but_are_counted() -> None:
    mark = {"reason": "r" * 10, "approved_by": "victor", "expires": "2027-01-01"}
    findings = [_finding(severity="critical", waived=mark), _finding(outcome="pass"), _finding(outcome="pass")]
    result = verdict(findings, RULES)
    assert (result.verdict, result.rule) == ("approved", 4)
    assert result.counted == {"waived": 1, "pass": 2}


def test_a_severity_condition_alone_matches_any_outcome() -> None:
    rules = [
        VerdictRule(verdict="not approved", when=VerdictCondition(severity=["minor"]), because="minor"),
        VerdictRule(verdict="approved", when=VerdictCondition(), because="default"),
    ]
    assert verdict([_finding(outcome="pass", severity="minor")], rules).rule == 1
    assert verdict([_finding(outcome="fail", severity="major")], rules).rule == 2


def test_rules_without_an_unconditional_one_are_an_error() -> None:
    with pytest.raises(ValueError, match="the verdict rules end without an unconditional rule"):
        verdict([_finding(outcome="pass")], RULES[:-1])


# --- the control table and the comparison ----------------------------------------------------
def _catalogue(*ids: str) -> Catalogue:
    return Catalogue(schema_version=1, version="t", controls=[CATALOGUE.get(i) for i in ids])


def test_the_control_table_shows_each_control_s_worst_live_outcome() -> None:
    mark = {"reason": "r" * 10, "approved_by": "victor", "expires": "2027-01-01"}
    findings = [
        _finding("CER-01", outcome="indeterminate"),
        _finding("CER-01", outcome="fail"),
        _finding("CER-02", outcome="pass"),
        _finding("CER-08", outcome="fail", waived=mark),
        _finding("CER-03", outcome="fatal"),
        _finding("CER-03", outcome="fail"),
        _finding("CER-04", outcome="not-applicable"),
    ]
    table = control_table(findings, _catalogue("CER-01", "CER-02", "CER-03", "CER-04", "CER-08"))
    assert [(r["control"], r["outcome"], r["findings"]) for r in table] == [
        ("CER-01", "fail", 2),
        ("CER-02", "pass", 1),
        ("CER-03", "fatal", 2),
        ("CER-04", "not-applicable", 1),
        ("CER-08", "waived", 1),
    ]
    cer02 = CATALOGUE.get("CER-02")
    assert table[1] == {
        "control": "CER-02",
        "title": cer02.title,
        "severity": cer02.severity,
        "outcome": "pass",
        "findings": 1,
        "cites": cer02.policy_ref,
    }


def test_compare_sorts_problems_into_new_resolved_and_persisting() -> None:
    persisting = _finding(subject="a")
    new = _finding(outcome="fatal", subject="b")
    resolved = _finding(outcome="indeterminate", subject="c")
    still_passing = _finding(outcome="pass", subject="d")
    previous = [persisting.to_json(), resolved.to_json(), still_passing.to_json(), {"id": "X-1", "outcome": "pass"}]
    result = compare([persisting, new, still_passing], previous)
    assert result == {"new": [new.id], "resolved": [resolved.id], "persisting": [persisting.id]}


def test_compare_against_no_previous_pack_makes_every_problem_new() -> None:
    findings = [_finding(subject="b"), _finding(subject="a"), _finding(outcome="pass")]
    assert compare(findings, []) == {"new": sorted([findings[0].id, findings[1].id]), "resolved": [], "persisting": []}
