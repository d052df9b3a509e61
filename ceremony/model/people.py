"""The participant register: who may take which trusted role, until when, and with which attestation key."""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ceremony.errors import InputError
from ceremony.model.config import IsoDate, Strict, data_dir, load_model

TrustedRole = Literal[
    "administrator", "operator", "custodian", "witness", "auditor", "approver", "ra-officer", "compliance-officer"
]


class Person(Strict):
    name: str
    organisation: str
    roles: list[TrustedRole] = Field(min_length=1)
    vetting_expires: IsoDate
    training_expires: IsoDate
    #: SHA-256 of the DER SubjectPublicKeyInfo of the key this person attests with (key file or own token).
    attestation_key: str | None = None

    @field_validator("attestation_key")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^sha256:[0-9a-f]{64}$", value):
            raise ValueError("must be sha256:<64 lower-case hex digits> of the public key's DER SPKI")
        return value


class Register(Strict):
    schema_version: Literal[1]
    people: dict[str, Person]

    @field_validator("people")
    @classmethod
    def _ids(cls, people: dict[str, Person]) -> dict[str, Person]:
        for pid in people:
            if not re.match(r"^[a-z0-9][a-z0-9._-]{0,63}$", pid):
                raise ValueError(f"person id {pid!r} must be lower-case letters, digits, . _ -")
        return people


def load_register(path: Path) -> Register:
    """Read the participant register strictly."""
    return load_model(Register, path)


def default_register(workspace: Path | None = None) -> Path:
    """``CEREMONY_REGISTER``, else the workspace's own ``people.yaml``, else the example in data/."""
    env = os.environ.get("CEREMONY_REGISTER")
    if env:
        return Path(env)
    if workspace is not None and (workspace / "people.yaml").is_file():
        return workspace / "people.yaml"
    return data_dir() / "people.yaml"


_PERSON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_person(value: str | None, what: str) -> str:
    if not value or not _PERSON.match(value):
        raise InputError(f"{what} must be a person id (letters, digits, . _ -), got {value!r}")
    return value


def operator() -> str:
    """Who runs the command: CEREMONY_OPERATOR, else the login name."""
    return os.environ.get("CEREMONY_OPERATOR") or getpass.getuser()
