"""The control catalogue (``data/controls/s1spkm.yaml``): what each control checks, as data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from ceremony.model.config import Strict, data_dir, load_model
from ceremony.model.policy import ControlSeverity

Area = Literal["governance", "ceremony", "keys", "certificates", "revocation", "logging", "personnel"]
Scope = Literal["pki", "symmetric"]


def control_id(value: str) -> str:
    """A control id as the catalogue writes them: an area prefix and two digits, e.g. CER-04."""
    if not re.match(r"^(GOV|CER|KEY|CRT|REV|LOG|PER)-\d{2}$", value):
        raise ValueError(f"must be a control id such as CER-04 (got {value!r})")
    return value


#: A model field holding a control id.
ControlId = Annotated[str, AfterValidator(control_id)]


class Control(Strict):
    id: ControlId
    title: str
    area: Area
    policy_ref: str
    evidence: list[str] = Field(min_length=1)
    check: str
    severity: ControlSeverity
    applies_to: list[Scope] = Field(min_length=1)


class Catalogue(Strict):
    schema_version: Literal[1]
    version: str
    controls: list[Control] = Field(min_length=1)

    @field_validator("controls")
    @classmethod
    def _unique(cls, controls: list[Control]) -> list[Control]:
        ids = [c.id for c in controls]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"control ids must be unique ({', '.join(twice)} appear twice)")
        return controls

    def get(self, control_id: str) -> Control:
        return next(c for c in self.controls if c.id == control_id)


def catalogue_path() -> Path:
    return data_dir() / "controls" / "s1spkm.yaml"


def load_catalogue(path: Path | None = None) -> Catalogue:
    return load_model(Catalogue, path or catalogue_path())
