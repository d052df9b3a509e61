"""Control findings: an id stable across runs and distinct per control, subject and code; what a Checker records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony.compliance.findings import Checker, ControlFinding
from ceremony.model.catalogue import load_catalogue

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue()
BROKEN = ControlFinding("CER-02", "fail", "transcript root-ca-2026-12", "chain_broken", "entry 7 does not chain")


def test_the_id_is_the_control_and_a_digest_of_control_subject_and_code() -> None:
    # sha256("CER-02|transcript root-ca-2026-12|chain_broken"): a golden value, so a change of scheme shows.
    assert BROKEN.id == "CER-02-a0f08c17"


def test_the_id_is_the_same_in_another_process() -> None:
    code = (
        "from ceremony.compliance.findings import ControlFinding;"
        "print(ControlFinding('CER-02', 'fail', 'transcript root-ca-2026-12', 'chain_broken', 'x').id)"
    )
    ids = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        ids.add(done.stdout.strip())
    assert ids == {BROKEN.id}


def test_the_id_ignores_what_may_change_between_runs() -> None:
    again = ControlFinding(
        "CER-02",
        "indeterminate",
        "transcript root-ca-2026-12",
        "chain_broken",
        "another message",
        ("t.jsonl",),
        "critical",
        {"reason": "r", "approved_by": "victor", "expires": "2027-01-01"},
    )
    assert again.id == BROKEN.id


@pytest.mark.parametrize(
    ("control", "subject", "code"),
    [
        ("CER-03", "transcript root-ca-2026-12", "chain_broken"),
        ("CER-02", "transcript root-ca-2027-01", "chain_broken"),
        ("CER-02", "transcript root-ca-2026-12", "seal_invalid"),
        ("CER-02", "", "chain_broken"),
        # The separator keeps "a|b" + "c" apart from "a" + "b|c".
        ("CER-02", "transcript root-ca-2026-12|chain_broken", ""),
    ],
)
def test_the_id_differs_when_control_subject_or_code_does(control: str, subject: str, code: str) -> None:
    other = ControlFinding(control, "fail", subject, code, "m")
    assert other.id != BROKEN.id
    assert other.id.startswith(f"{control}-") and len(other.id) == len(control) + 9


def test_to_json_carries_the_id_first_and_evidence_as_a_list() -> None:
    finding = ControlFinding(
        "KEY-01", "fail", "hsm HSM-2", "fips_level", "level 2 < 3", ("registers/hsms.yaml",), "major"
    )
    out = finding.to_json()
    assert list(out)[0] == "id"
    assert out == {
        "id": finding.id,
        "control": "KEY-01",
        "outcome": "fail",
        "subject": "hsm HSM-2",
        "code": "fips_level",
        "message": "level 2 < 3",
        "evidence": ["registers/hsms.yaml"],
        "severity": "major",
        "waived": None,
    }
    assert json.loads(json.dumps(out)) == out


def test_a_checker_records_failures_and_undecidable_points_with_the_control_s_severity() -> None:
    control = CATALOGUE.get("CER-02")
    checker = Checker(control)
    checker.fail("transcript a", "chain_broken", "entry 3 does not chain", "transcripts/a.jsonl", "inventory")
    checker.indeterminate("transcript b", "unreadable", "cannot read it")
    assert checker.findings == [
        ControlFinding(
            "CER-02",
            "fail",
            "transcript a",
            "chain_broken",
            "entry 3 does not chain",
            ("transcripts/a.jsonl", "inventory"),
            "critical",
        ),
        ControlFinding("CER-02", "indeterminate", "transcript b", "unreadable", "cannot read it", (), "critical"),
    ]
    assert all(f.waived is None for f in checker.findings)


def test_a_checker_says_not_applicable_for_the_whole_control() -> None:
    checker = Checker(CATALOGUE.get("GOV-01"))
    checker.not_applicable("no documents in scope")
    (finding,) = checker.findings
    assert (finding.control, finding.outcome, finding.subject, finding.code) == ("GOV-01", "not-applicable", "", "n/a")
    assert (finding.message, finding.evidence, finding.severity) == ("no documents in scope", (), "major")


def test_checked_records_what_was_examined_without_a_finding() -> None:
    checker = Checker(CATALOGUE.get("CER-02"))
    checker.checked("3 transcripts")
    checker.checked("their seals")
    assert checker.looked_at == ["3 transcripts", "their seals"]
    assert checker.findings == []
