"""Policy parameters: every number a ceremony, revocation or control check enforces, versioned data.

The file (``data/policy/s1spkm-parameters.yaml``) cites the clause each number implements.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ceremony.model.config import Strict, data_dir, load_model


class CeremonyPolicy(Strict):
    approvals_required: int = Field(ge=1)
    min_quorum_m: int = Field(ge=1)
    max_quorum_n: int = Field(ge=1)
    custodian_organisations_min: int = Field(ge=1)
    witnesses_min: int = Field(ge=0)


RevocationReason = Literal[
    "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"
]


class RevocationPolicy(Strict):
    crl_next_update_hours: int = Field(ge=1)
    arl_next_update_days: int = Field(ge=1)
    reasons: list[RevocationReason] = Field(min_length=1)
    #: Read in older parameter files (and the packs that carry them) but no longer consulted: since issue K every
    #: revocation takes a requester and a different registered approver, whatever its reason.
    two_person_reasons: list[RevocationReason] = Field(default_factory=list)


class ActivationPolicy(Strict):
    """How long, and for how many signatures, custodians' shares open the token for daily work."""

    default_minutes: int = Field(ge=1)
    max_minutes: int = Field(ge=1)
    default_operations: int = Field(ge=1)
    max_operations: int = Field(ge=1)


class CompromisePolicy(Strict):
    """REV-05: how soon a CA compromise is answered (the PMA's notification: compliance.incident_notification_hours)"""

    #: From the incident's detection to the CA certificate's revocation.
    revocation_hours: int = Field(ge=1)
    #: From the revocation to the first CRL/ARL of the issuer that lists it.
    arl_publication_hours: int = Field(ge=1)


class RenewalWindow(Strict):
    """Days before a CA certificate's notAfter that its renewal window opens, by the CA's role (the calendar)."""

    root: int = Field(ge=1)
    issuing: int = Field(ge=1)


class KeyPolicy(Strict):
    #: KEY-01: a CA key may stay EXTRACTABLE (for its wrapped backup) at most this many days after generation.
    extractable_max_days: int = Field(ge=1)
    #: The calendar (``ceremony calendar``, GOV-07): a CA's renewal window opens this long before it expires.
    #: Optional so that older parameter files (and the packs that carry them) still read; without it the calendar
    #: shows no renewal windows and says so.
    ca_renewal_window_days: RenewalWindow | None = None


ControlOutcome = Literal["pass", "fail", "not-applicable", "indeterminate", "fatal"]
ControlSeverity = Literal["critical", "major", "minor"]
Verdict = Literal["approved", "approved with caveats", "not approved"]


class VerdictCondition(Strict):
    outcome: list[ControlOutcome] = Field(default_factory=list)
    severity: list[ControlSeverity] = Field(default_factory=list)


class VerdictRule(Strict):
    verdict: Verdict
    when: VerdictCondition
    because: str


class CompliancePolicy(Strict):
    annual_assessment_months: int = Field(ge=1)
    incident_notification_hours: int = Field(ge=1)
    revocation_publication_hours: int = Field(ge=1)
    retention_years: int = Field(ge=1)
    serial_entropy_bits: int = Field(ge=1)
    clock_tolerance_seconds: int = Field(ge=0)
    hsm_min_fips_level: int = Field(ge=1, le=4)
    #: The calendar (``ceremony calendar``): an item falling due within this many days is "due soon". Optional
    #: so that older parameter files still read; without it only what falls due today is "due soon".
    calendar_due_soon_days: int | None = Field(default=None, ge=0)
    #: First matching rule wins; the last rule has no condition and is the default.
    verdict: list[VerdictRule] = Field(min_length=1)


class PolicyParameters(Strict):
    schema_version: Literal[1]
    version: str
    ceremony: CeremonyPolicy
    revocation: RevocationPolicy
    activation: ActivationPolicy
    keys: KeyPolicy
    compliance: CompliancePolicy
    #: Optional so that older parameter files (and the packs that carry them) still read; REV-05 cannot decide
    #: without it.
    compromise: CompromisePolicy | None = None


def load_policy(path: Path | None = None) -> PolicyParameters:
    return load_model(PolicyParameters, path or data_dir() / "policy" / "s1spkm-parameters.yaml")
