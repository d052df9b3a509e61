"""Policy parameters as versioned data: the shipped numbers, the verdict rules, and a malformed file refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ceremony.compliance.assessment import verdict
from ceremony.errors import ConfigError
from ceremony.model.config import data_dir, load_yaml, parse_model
from ceremony.model.policy import PolicyParameters, load_policy

SHIPPED = data_dir() / "policy" / "s1spkm-parameters.yaml"


def test_the_shipped_parameters_load_with_their_numbers() -> None:
    policy = load_policy()
    assert (policy.schema_version, policy.version) == (1, "2026.1-draft")
    c = policy.ceremony
    assert (c.approvals_required, c.min_quorum_m, c.max_quorum_n, c.witnesses_min) == (2, 2, 16, 1)
    assert c.custodian_organisations_min == 2
    r = policy.revocation
    assert (r.crl_next_update_hours, r.arl_next_update_days) == (168, 365)
    assert {"keyCompromise", "cACompromise"} <= set(r.reasons)
    p = policy.compliance
    assert (p.annual_assessment_months, p.serial_entropy_bits, p.hsm_min_fips_level) == (12, 64, 3)
    assert (p.clock_tolerance_seconds, p.retention_years, p.revocation_publication_hours) == (300, 7, 24)


def test_the_verdict_rules_end_with_an_unconditional_default() -> None:
    rules = load_policy().compliance.verdict
    assert [r.verdict for r in rules] == ["not approved", "not approved", "approved with caveats", "approved"]
    assert (rules[0].when.outcome, rules[0].when.severity) == (["fail"], ["critical"])
    last = rules[-1]
    assert not last.when.outcome and not last.when.severity


def test_load_policy_reads_the_path_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace("witnesses_min: 1", "witnesses_min: 3"))
    assert load_policy(path).ceremony.witnesses_min == 3


def _data() -> dict[str, Any]:
    return copy.deepcopy(load_yaml(SHIPPED))


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "ceremony",
            "approvals_required",
            0,
            "ceremony.approvals_required: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            "compliance",
            "hsm_min_fips_level",
            5,
            "compliance.hsm_min_fips_level: Input should be less than or equal to 4 (got 5)",
        ),
        (
            "revocation",
            "reasons",
            ["unspecified"],
            "revocation.reasons.0 must be one of 'keyCompromise', 'cACompromise', "
            "'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn' (got 'unspecified')",
        ),
        (
            "compliance",
            "verdict",
            [],
            "compliance.verdict: List should have at least 1 item after validation, not 0 (got [])",
        ),
        (
            "ceremony",
            "quorum",
            3,
            "ceremony.quorum is not a field; allowed: approvals_required, min_quorum_m, "
            "max_quorum_n, custodian_organisations_min, witnesses_min",
        ),
    ],
)
def test_a_malformed_parameter_is_refused_naming_it(section: str, key: str, value: Any, message: str) -> None:
    data = _data()
    data[section][key] = value
    with pytest.raises(ConfigError) as err:
        parse_model(PolicyParameters, data, "p.yaml")
    assert err.value.message == f"p.yaml: {message}"


def test_an_unknown_verdict_is_refused() -> None:
    data = _data()
    data["compliance"]["verdict"][0]["verdict"] = "rejected"
    with pytest.raises(ConfigError, match=r"compliance\.verdict\.0\.verdict must be one of"):
        parse_model(PolicyParameters, data, "p.yaml")


@pytest.mark.xfail(
    strict=True,
    raises=pytest.fail.Exception,
    reason="gap: CompliancePolicy documents that the last verdict rule has no condition, but does not enforce it; "
    "such a file loads and verdict() later raises a bare ValueError (a traceback, not a ConfigError)",
)
def test_verdict_rules_without_an_unconditional_last_rule_are_refused_at_load() -> None:
    data = _data()
    data["compliance"]["verdict"] = data["compliance"]["verdict"][:-1]
    with pytest.raises(ConfigError, match="verdict"):
        parse_model(PolicyParameters, data, "p.yaml")


def test_today_such_rules_fail_only_when_a_verdict_is_asked_for() -> None:
    data = _data()
    data["compliance"]["verdict"] = data["compliance"]["verdict"][:-1]
    policy = parse_model(PolicyParameters, data, "p.yaml")
    with pytest.raises(ValueError, match="the verdict rules end without an unconditional rule"):
        verdict([], policy.compliance.verdict)


def test_an_older_parameter_file_with_two_person_reasons_still_loads(tmp_path: Path) -> None:
    # Packs built before issue K carry a policy file naming two_person_reasons; reading them must not fail.
    shipped = (data_dir() / "policy" / "s1spkm-parameters.yaml").read_text(encoding="utf-8")
    assert "two_person_reasons" not in shipped
    older = shipped.replace("revocation:\n", "revocation:\n  two_person_reasons: [keyCompromise, cACompromise]\n", 1)
    (tmp_path / "older.yaml").write_text(older, encoding="utf-8")
    assert load_policy(tmp_path / "older.yaml").revocation.reasons == load_policy().revocation.reasons


def test_the_compromise_deadlines_load_and_an_older_file_without_them_still_does() -> None:
    """REV-05's deadlines (compromise.*); a parameter file from before them (and the packs carrying one) still reads,
    with none, and REV-05 then cannot decide."""
    assert load_policy().compromise is not None
    assert (load_policy().compromise.revocation_hours, load_policy().compromise.arl_publication_hours) == (24, 24)  # type: ignore[union-attr]
    data = _data()
    del data["compromise"]
    assert parse_model(PolicyParameters, data, "older.yaml").compromise is None
    data["compromise"] = {"revocation_hours": 0, "arl_publication_hours": 24}
    with pytest.raises(ConfigError) as err:
        parse_model(PolicyParameters, data, "p.yaml")
    assert err.value.message == (
        "p.yaml: compromise.revocation_hours: Input should be greater than or equal to 1 (got 0)"
    )
