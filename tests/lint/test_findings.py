"""Lint findings are values: ordered severities, one-line text, JSON, and which of them fail a lint."""

from __future__ import annotations

import dataclasses

import pytest

from ceremony.lint.findings import Finding, Severity, failing

ALL = [
    Finding(Severity.INFO, "profile.device.expiry", "never expires", "d.pem"),
    Finding(Severity.ERROR, "profile.device.san_not_critical", "SAN must be critical", "d.pem"),
    Finding(Severity.NOTICE, "profile.device.note", "noted"),
    Finding(Severity.FATAL, "profile.check_crashed", "the check crashed"),
    Finding(Severity.WARNING, "profile.device.order", "extension order differs", "d.pem"),
]


def test_severities_are_ordered_so_max_is_the_worst() -> None:
    assert sorted(Severity) == [Severity.INFO, Severity.NOTICE, Severity.WARNING, Severity.ERROR, Severity.FATAL]
    assert max(f.severity for f in ALL) is Severity.FATAL
    assert max(Severity.WARNING, Severity.ERROR) is Severity.ERROR


def test_failing_keeps_error_and_fatal_in_their_order() -> None:
    assert failing(ALL) == [ALL[1], ALL[3]]
    assert failing([f for f in ALL if f.severity < Severity.ERROR]) == []
    assert failing([]) == []


def test_a_finding_prints_as_one_line_naming_its_subject() -> None:
    assert str(ALL[1]) == "d.pem: ERROR profile.device.san_not_critical: SAN must be critical"
    assert str(ALL[3]) == "FATAL profile.check_crashed: the check crashed"


def test_to_json_names_the_severity() -> None:
    assert ALL[0].to_json() == {
        "severity": "INFO",
        "code": "profile.device.expiry",
        "message": "never expires",
        "subject": "d.pem",
    }
    assert ALL[2].to_json()["subject"] == ""


def test_findings_are_frozen_values() -> None:
    same = Finding(Severity.ERROR, "profile.device.san_not_critical", "SAN must be critical", "d.pem")
    assert same == ALL[1] and hash(same) == hash(ALL[1])
    assert len(set(ALL + [same])) == len(ALL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        same.severity = Severity.INFO  # type: ignore[misc]
