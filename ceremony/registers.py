"""Registers the compliance checks read beyond what ceremonies write: documents (CP/CPS and their PMA
approvals), assessments, incidents, the HSM inventory and waivers. Strict schemas; example data in
``data/registers/``; a workspace's own copies in ``<workspace>/registers/`` take precedence.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ceremony.config import Strict, data_dir, load_model

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _iso_date(value: str) -> str:
    if not _DATE.match(value):
        raise ValueError(f"must be a date YYYY-MM-DD (got {value!r})")
    date.fromisoformat(value)
    return value


def _aware_time(value: str) -> str:
    """An ISO 8601 time with its offset: a naive time means nothing in a register shared across sites."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"must be an ISO 8601 time with an offset, e.g. 2026-05-01T09:30:00+00:00 (got {value!r})"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"must carry a UTC offset (got {value!r}, which has none)")
    return value


class Approval(Strict):
    ref: str
    date: str
    _date = field_validator("date")(classmethod(lambda cls, v: _iso_date(v)))


class Document(Strict):
    id: str
    kind: Literal["CP", "CPS", "KMPS", "compliance-policy"]
    title: str
    version: str
    status: Literal["in-force", "draft", "superseded"]
    pma_approval: Approval | None = None
    next_review: str
    #: For a CPS or KMPS: the document id and version it implements, e.g. "s1spki-cp 1.2".
    implements: str | None = None
    _review = field_validator("next_review")(classmethod(lambda cls, v: _iso_date(v)))


class DocumentRegister(Strict):
    schema_version: Literal[1]
    documents: list[Document] = Field(min_length=1)


class AssessmentFinding(Strict):
    id: str
    summary: str
    status: Literal["open", "closed"]
    due: str
    _due = field_validator("due")(classmethod(lambda cls, v: _iso_date(v)))


class Assessment(Strict):
    id: str
    type: Literal["initial-stage-1", "initial-stage-2", "annual", "ad-hoc"]
    date: str
    assessor: str
    assessor_organisation: str
    outcome: Literal["approved", "approved with caveats", "not approved"]
    remediation_plan: str | None = None
    findings: list[AssessmentFinding] = Field(default_factory=list)
    _date = field_validator("date")(classmethod(lambda cls, v: _iso_date(v)))


class AssessmentRegister(Strict):
    schema_version: Literal[1]
    assessments: list[Assessment] = Field(default_factory=list)


class Incident(Strict):
    id: str
    kind: Literal["key-compromise", "suspected-compromise", "other"]
    summary: str
    detected_at: str
    pma_notified_at: str | None = None
    recovery_decision_at: str | None = None
    recovery_key_used_at: str | None = None

    @field_validator("detected_at", "pma_notified_at", "recovery_decision_at", "recovery_key_used_at")
    @classmethod
    def _times(cls, value: str | None) -> str | None:
        return None if value is None else _aware_time(value)


class IncidentRegister(Strict):
    schema_version: Literal[1]
    incidents: list[Incident] = Field(default_factory=list)


class Hsm(Strict):
    id: str
    model: str
    firmware: str
    fips_certificate: str
    #: FIPS 140-2/3 level; 0 for a module with no validation (SoftHSM2 standing in on a workbench).
    fips_level: int = Field(ge=0, le=4)
    location: str
    #: Token labels this HSM (or partition) carries.
    token_labels: list[str] = Field(min_length=1)


class HsmInventory(Strict):
    schema_version: Literal[1]
    hsms: list[Hsm] = Field(default_factory=list)


class Waiver(Strict):
    control: str
    #: The finding's subject the waiver covers; omitted, it covers every finding of the control.
    subject: str | None = None
    reason: str = Field(min_length=10)
    approved_by: str
    expires: str
    _expires = field_validator("expires")(classmethod(lambda cls, v: _iso_date(v)))

    @field_validator("control")
    @classmethod
    def _control(cls, value: str) -> str:
        from ceremony.checks.catalogue import control_id

        return control_id(value)


class Waivers(Strict):
    schema_version: Literal[1]
    waivers: list[Waiver] = Field(default_factory=list)


REGISTERS: dict[str, type[Strict]] = {
    "documents": DocumentRegister,
    "assessments": AssessmentRegister,
    "incidents": IncidentRegister,
    "hsms": HsmInventory,
    "waivers": Waivers,
}


def register_path(name: str, workspace: Path | None = None) -> Path:
    """``<workspace>/registers/<name>.yaml`` when the workspace keeps its own, else the example in data/."""
    if workspace is not None and (workspace / "registers" / f"{name}.yaml").is_file():
        return workspace / "registers" / f"{name}.yaml"
    return data_dir() / "registers" / f"{name}.yaml"


def load_registers(workspace: Path | None = None) -> dict[str, Strict]:
    """Every register, strictly (a malformed one is a ConfigError naming the file and field)."""
    return {name: load_model(model, register_path(name, workspace)) for name, model in REGISTERS.items()}
