"""Simulated years of one PKI, checked after every step and compared with the golden verdicts each year.

The simulation runs as the bench command does (``python -m bench.lifetime``), in a process of its own started
beside the rest of the suite (conftest.py): its workspace's token is a SoftHSM2 configuration of its own, and
its clock is pinned at each step's instant.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from bench.lifetime import compare, golden_path, main
from tests.lifetime.conftest import YEARS
from tests.lifetime.engine import finding_key, violations


@pytest.mark.slow
@pytest.mark.hsm
@pytest.mark.lifetime("years")
def test_the_simulated_years_hold_after_every_step_and_each_has_its_golden_verdict_and_findings(
    lifetime_run: Callable[[str], subprocess.CompletedProcess[str]],
) -> None:
    done = lifetime_run("years")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    golden = json.loads(golden_path(1).read_text())["assessments"][:YEARS]
    got = [{k: a[k] for k in ("date", "verdict", "fatal", "findings")} for a in result["assessments"]]
    assert got == golden
    assert len(got) == YEARS and all(a["fatal"] == 0 for a in got)
    assert result["golden"]["matches"] is True
    assert result["steps"] > YEARS * 52 * 2  # a CRL work day a week at least: publish, end


@pytest.mark.slow
@pytest.mark.hsm
@pytest.mark.lifetime("broken")
def test_a_forgotten_crl_fails_the_simulation_naming_the_step_and_the_control(
    lifetime_run: Callable[[str], subprocess.CompletedProcess[str]],
) -> None:
    done = lifetime_run("broken")
    assert done.returncode == 1, done.stderr[-3000:]
    (line,) = [text for text in done.stderr.splitlines() if text.startswith("lifetime: FAILED")]
    # The last issuing CRL before 2027-01-01 is due again a week after it: the first step after that finds it.
    failed = r"lifetime: FAILED after \d+ steps: step 2027-01-0\d \d\d:\d\d \w+ .*: "
    assert re.match(failed + r"REV-01 fail \(stale\) crl s1sp-issuing: ", line), line


def _finding(control: str, outcome: str, code: str = "x", subject: str = "", waived: object = None) -> SimpleNamespace:
    return SimpleNamespace(control=control, outcome=outcome, code=code, subject=subject, message="m", waived=waived)


def test_what_must_never_be_found_is_a_fatal_finding_or_records_that_disagree() -> None:
    assert (
        violations([_finding("CER-08", "indeterminate"), _finding("KEY-02", "fail"), _finding("LOG-04", "pass")]) == []
    )
    assert violations([_finding("KEY-09", "fail", waived={"reason": "r"})]) == []
    assert violations([_finding("PER-01", "fatal", "crashed")]) == ["PER-01 fatal (crashed) : m"]
    assert violations([_finding("REV-01", "fail", "gap:7", "crl s1sp-issuing")]) == [
        "REV-01 fail (gap:7) crl s1sp-issuing: m"
    ]


def test_a_finding_is_summarised_without_serials_or_hashes() -> None:
    serial = _finding("CRT-06", "fail", "duplicate", "certificate 52F6A1B2C3D4E5F60718293A4B5C6D7E")
    assert finding_key(serial) == "CRT-06 fail duplicate certificate *"
    assert (
        finding_key(_finding("KEY-01", "fail", "fips-level", "token t", {"r": 1}))
        == "KEY-01 fail waived fips-level token t"
    )


def test_the_golden_comparison_names_the_year_and_what_differs() -> None:
    want = [{"date": "2027-11-30", "verdict": "approved", "fatal": 0, "findings": ["CER-08 indeterminate a"]}]
    got = {"assessments": [{"date": "2027-11-30", "verdict": "approved with caveats", "fatal": 0,
                            "findings": ["REV-01 fail gap crl s1sp-issuing"]}]}  # fmt: skip
    assert compare(got, want) == [
        "assessment 2027-11-30: verdict is 'approved with caveats', the golden file says 'approved'",
        "assessment 2027-11-30: new finding REV-01 fail gap crl s1sp-issuing",
        "assessment 2027-11-30: expected finding gone: CER-08 indeterminate a",
    ]
    assert compare(got, want) != [] and compare({"assessments": want}, want) == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--seed", "99"], "tests/lifetime/golden/seed-99.json does not exist; add --write-golden"),
        (["--years", "31"], "--years must be between 1 and 30 (got 31)"),
        (["--years", "30"], "tests/lifetime/golden/seed-1.json has "),
    ],
)
def test_a_run_the_golden_file_cannot_judge_is_refused_before_it_starts(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    (line,) = [text for text in capsys.readouterr().err.splitlines() if "error:" in text]
    assert says in line
