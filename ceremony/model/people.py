"""The participant register: who may take which trusted role, until when, and with which attestation key."""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ceremony.errors import ConfigError, InputError
from ceremony.model.config import IsoDate, Strict, data_dir, load_model

#: The largest participant register read (the example is 2 KiB; a register of a thousand people is ~300 KiB).
MAX_REGISTER_BYTES = 1 << 20

TrustedRole = Literal[
    "administrator", "operator", "custodian", "witness", "auditor", "approver", "ra-officer", "compliance-officer"
]


class Person(Strict):
    name: str
    organisation: str
    roles: list[TrustedRole] = Field(min_length=1)
    vetting_expires: IsoDate
    training_expires: IsoDate
    #: The day the person left the PKI (kept on the register: their past acts stay attributable). From that day
    #: they hold no seat, and a share they still hold of a current split is a finding (KEY-10).
    left: IsoDate | None = None
    #: SHA-256 of the DER SubjectPublicKeyInfo of the key this person attests with (key file or own token).
    attestation_key: str | None = None
    #: The self-signed certificate of that key (PEM), relative to the register's folder (set by enrolment).
    attestation_certificate: str | None = None
    #: The label of the person's own token that holds the key (set by enrolment; none for a file key).
    attestation_token: str | None = None

    @field_validator("attestation_key")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^sha256:[0-9a-f]{64}$", value):
            raise ValueError("must be sha256:<64 lower-case hex digits> of the public key's DER SPKI")
        return value

    @field_validator("attestation_certificate")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (not value or value.startswith("/") or ".." in value.split("/")):
            raise ValueError("must be a path inside the register's folder, e.g. people/<id>.pem")
        return value

    @field_validator("attestation_token")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not 0 < len(value.encode("utf-8")) <= 32:
            raise ValueError("must be a token label of 1 to 32 bytes")
        return value


class Register(Strict):
    max_file_bytes: ClassVar[int] = MAX_REGISTER_BYTES
    file_kind: ClassVar[str] = "participant register"

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
    """Read the participant register strictly (a regular file of at most ``MAX_REGISTER_BYTES``)."""
    return load_model(Register, path)


#: A workspace's own participant register, in its root.
REGISTER_FILE = "people.yaml"
#: The folder of a workspace that holds its rehearsal area (a workspace of its own).
REHEARSAL_AREA = "rehearsal"


def default_register(workspace: Path | None = None) -> Path:
    """``CEREMONY_REGISTER``, else the workspace's own ``people.yaml``; outside a workspace, the example in data/.

    A workspace never falls back to the example register: the people it names are not the workspace's.

    Raises:
        ConfigError: ``workspace`` is given and holds no ``people.yaml`` (nor is ``CEREMONY_REGISTER`` set).
    """
    env = os.environ.get("CEREMONY_REGISTER")
    if env:
        return Path(env)
    if workspace is None:
        return data_dir() / REGISTER_FILE
    path = workspace / REGISTER_FILE
    live = workspace.parent / REGISTER_FILE
    if not os.path.lexists(path) and workspace.name == REHEARSAL_AREA and os.path.lexists(live):
        return live  # a rehearsal area practises with its live workspace's people, as they stand today
    if not os.path.lexists(path):  # anything else that stands there is refused when it is read
        raise ConfigError(
            f"{path}: no participant register in this workspace",
            hint=f"copy {data_dir() / REGISTER_FILE} there and edit it, or name one with --register or "
            "CEREMONY_REGISTER",
        )
    return path


_PERSON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_person(value: str | None, what: str) -> str:
    if not value or not _PERSON.match(value):
        raise InputError(f"{what} must be a person id (letters, digits, . _ -), got {value!r}")
    return value


def workspace_register(workspace: Path) -> Register:
    """The register the desk checks people against: ``CEREMONY_REGISTER``, else the workspace's ``people.yaml``.

    Raises:
        ConfigError: the workspace has no register, or it is not a valid one.
    """
    return load_register(default_register(workspace))


def check_role(register: Register, person_id: str, role: TrustedRole | None, what: str) -> Person:
    """``person_id``'s entry, refused unless the register names them for ``role`` (any role when None).

    The message names the option (``what``), the person and the role that is missing, as ``ceremony approve``'s
    and pre-flight's do.

    Raises:
        InputError: ``person_id`` is not a person id, is not in the register, or lacks ``role``.
    """
    check_person(person_id, what)
    person = register.people.get(person_id)
    if person is None:
        needed = f" (the {role} role is needed)" if role else ""
        raise InputError(f"{what}: {person_id!r} is not in the participant register{needed}")
    if role is not None and role not in person.roles:
        raise InputError(
            f"{what}: {person_id} is not registered for the {role} role (registered: {', '.join(person.roles)})"
        )
    return person


def operator() -> str:
    """Who runs the command: CEREMONY_OPERATOR, else the login name."""
    return os.environ.get("CEREMONY_OPERATOR") or getpass.getuser()


#: The register fields enrolment writes, in the order it writes them.
KEY_FIELDS = ("attestation_key", "attestation_certificate", "attestation_token")


def _scalar(value: str) -> str:
    """A YAML double-quoted scalar (enrolment's values: fingerprints, relative paths, token labels)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_key_fields(text: str, person: str, values: dict[str, str]) -> str | None:
    """The register text with ``person``'s key fields set to ``values`` (``KEY_FIELDS`` only), everything else
    (other people, comments, order) as it was; None when the entry is not laid out as a block this can edit
    (the caller then rewrites the whole register)."""
    if set(values) - set(KEY_FIELDS):
        raise ValueError(f"only {', '.join(KEY_FIELDS)} are set here")
    lines = text.splitlines(keepends=True)
    people = next((i for i, line in enumerate(lines) if re.match(r"^people:\s*(#.*)?$", line)), None)
    if people is None:
        return None
    head = re.compile(rf"^(\s+){re.escape(person)}:\s*(#.*)?$")
    start = next((i for i in range(people + 1, len(lines)) if head.match(lines[i])), None)
    if start is None:
        return None
    indent = len(head.match(lines[start]).group(1))  # type: ignore[union-attr]
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line.lstrip().startswith("#") and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    body = lines[start + 1 : end]
    fields = [line for line in body if line.strip() and not line.lstrip().startswith("#")]
    if not fields:
        return None
    field_indent = len(fields[0]) - len(fields[0].lstrip())
    own = re.compile(rf"^ {{{field_indent}}}({'|'.join(KEY_FIELDS)}):")
    kept = [line for line in body if not own.match(line)]
    last = max((i for i, line in enumerate(kept) if line.strip() and not line.lstrip().startswith("#")), default=-1)
    if last < 0:
        return None
    entry, after = kept[: last + 1], kept[last + 1 :]  # blank lines and comments after the entry stay after it
    if not entry[-1].endswith("\n"):
        entry[-1] += "\n"
    added = [f"{' ' * field_indent}{name}: {_scalar(values[name])}\n" for name in KEY_FIELDS if name in values]
    return "".join(lines[: start + 1] + entry + added + after + lines[end:])
