"""Simulated years of one PKI, checked after every step and compared with the golden verdicts each year.

The simulation runs as the bench command does (``python -m bench.lifetime``), in a process of its own: its
workspace's token is a SoftHSM2 configuration of its own, and its clock is pinned at each step's instant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.lifetime import compare, golden_path
from tests.lifetime.engine import finding_key, violations

REPO = Path(__file__).resolve().parents[2]


def _lifetime(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.lifetime", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


#: Simulated years the suite runs: one by default (a year costs about two minutes on 2 cores, and the whole suite
#: must stay under twenty), ten before a release (``LIFETIME_YEARS=10 make test``, or ``python -m bench.lifetime``).
YEARS = int(os.environ.get("LIFETIME_YEARS", "1"))


@pytest.mark.slow
@pytest.mark.hsm
def test_the_simulated_years_hold_after_every_step_and_each_has_its_golden_verdict_and_findings() -> None:
    done = _lifetime("--years", str(YEARS), "--json", timeout=600 * YEARS)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    golden = json.loads(golden_path(1).read_text())["assessments"][:YEARS]
    got = [{k: a[k] for k in ("date", "verdict", "fatal", "findings")} for a in result["assessments"]]
    assert got == golden
    assert len(got) == YEARS and all(a["fatal"] == 0 for a in got)
    assert result["golden"]["matches"] is True
    assert result["steps"] > YEARS * 52 * 2  # a CRL work day a week at least: publish, end


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
