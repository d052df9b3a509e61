"""Registers the compliance checks read beyond what ceremonies write: documents (CP/CPS and their PMA
approvals), assessments, incidents, the HSM inventory and waivers. Strict schemas; example data in
``data/registers/``; a workspace's own copies in ``<workspace>/registers/`` take precedence.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ceremony.model.catalogue import ControlId
from ceremony.model.config import IsoDate, Strict, data_dir, load_model

#: The largest register file read (documents, assessments, incidents, HSMs, waivers): refused before parsing.
MAX_REGISTER_FILE_BYTES = 1 << 20


class _RegisterFile(Strict):
    """A register file's top level: bounded in size when read (``load_model`` reads these class values)."""

    max_file_bytes: ClassVar[int] = MAX_REGISTER_FILE_BYTES
    file_kind: ClassVar[str] = "register"


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
    date: IsoDate


class Document(Strict):
    id: str
    kind: Literal["CP", "CPS", "KMPS", "compliance-policy"]
    title: str
    version: str
    status: Literal["in-force", "draft", "superseded"]
    pma_approval: Approval | None = None
    next_review: IsoDate
    #: For a CPS or KMPS: the document id and version it implements, e.g. "s1spki-cp 1.2".
    implements: str | None = None


class DocumentRegister(_RegisterFile):
    schema_version: Literal[1]
    documents: list[Document] = Field(min_length=1)


class AssessmentFinding(Strict):
    id: str
    summary: str
    status: Literal["open", "closed"]
    due: IsoDate


class Assessment(Strict):
    id: str
    type: Literal["initial-stage-1", "initial-stage-2", "annual", "ad-hoc"]
    date: IsoDate
    assessor: str
    assessor_organisation: str
    outcome: Literal["approved", "approved with caveats", "not approved"]
    remediation_plan: str | None = None
    findings: list[AssessmentFinding] = Field(default_factory=list)


class AssessmentRegister(_RegisterFile):
    schema_version: Literal[1]
    assessments: list[Assessment] = Field(default_factory=list)


class Incident(Strict):
    id: str
    kind: Literal["key-compromise", "suspected-compromise", "other"]
    summary: str
    detected_at: str
    #: The CA (by workspace name) whose key the incident compromises: REV-05 then wants its certificate revoked,
    #: on its issuer's ARL and the PMA notified, each on time (the times come from the inventory and the CRL files).
    ca: str | None = None
    pma_notified_at: str | None = None
    recovery_decision_at: str | None = None
    recovery_key_used_at: str | None = None

    @field_validator("detected_at", "pma_notified_at", "recovery_decision_at", "recovery_key_used_at")
    @classmethod
    def _times(cls, value: str | None) -> str | None:
        return None if value is None else _aware_time(value)


class IncidentRegister(_RegisterFile):
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


class HsmInventory(_RegisterFile):
    schema_version: Literal[1]
    hsms: list[Hsm] = Field(default_factory=list)


class Waiver(Strict):
    control: ControlId
    #: The finding's subject the waiver covers; omitted, it covers every finding of the control.
    subject: str | None = None
    reason: str = Field(min_length=10)
    approved_by: str
    expires: IsoDate


class Waivers(_RegisterFile):
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
