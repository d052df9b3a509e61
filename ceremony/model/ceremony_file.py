"""Ceremony files: one strict model per ceremony type, the pre-flight checks, and approvals.

A ceremony file is the one input of a ceremony; reviewing and approving the file (by its
SHA-256) is approving the ceremony. The pre-flight refuses, naming the field path, anything
the participant register or the policy parameters forbid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ceremony.errors import ConfigError, InputError
from ceremony.model.config import IsoDate, Strict, parse_model, parse_yaml_lines, read_yaml_bytes
from ceremony.model.events import CeremonyApprove, Event
from ceremony.model.people import Register
from ceremony.model.policy import PolicyParameters
from ceremony.model.profiles import KeyAlgorithm

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
#: What a ceremony id looks like (also the stem of its transcript's file name).
CEREMONY_ID = _ID


# --- the parts a ceremony file is made of -------------------------------------------------
class Participants(Strict):
    administrator: str
    operators: list[str] = Field(min_length=1)
    custodians: list[str] = Field(default_factory=list)
    witnesses: list[str] = Field(default_factory=list)


class Quorum(Strict):
    m: int = Field(ge=1)
    n: int = Field(ge=1)


class Token(Strict):
    #: "softhsm" finds the installed SoftHSM2 module; otherwise the PKCS#11 module path.
    module: str
    label: str
    #: RFC 5649 AES key wrap with padding: SoftHSM numbers it 0x210A, PKCS#11 3.x HSMs 0x210B. "auto": a backup
    #: uses KWP (0x210B) where the token offers it, 0x210A otherwise; a named one must be on the token's list.
    #: A restore uses the mechanism its backup's metadata names (a named one here must be that one).
    wrap_mechanism: Literal["auto", "0x210A", "0x210B", "0x2109"]


class KeySpec(Strict):
    label: str
    algorithm: KeyAlgorithm
    #: A wrapped backup allowed: the key is SENSITIVE and EXTRACTABLE (only ever exported wrapped) until the
    #: backup's restore test clears EXTRACTABLE; otherwise SENSITIVE and never extractable.
    backup: bool


class Naming(Strict):
    """The naming document: what the issued CA certificate must say."""

    profile: str
    common_name: str
    validity_days: int = Field(gt=0)


class Recording(Strict):
    video_id: str


class Bags(Strict):
    """Tamper-evident bag numbers: tokens by label, share cards by custodian id."""

    tokens: dict[str, str] = Field(default_factory=dict)
    share_cards: dict[str, str] = Field(default_factory=dict)


def inside_workspace(value: str) -> str:
    """A path a ceremony file names: relative, and never out of the workspace through ``..``."""
    parts = Path(value).parts
    if Path(value).is_absolute() or ".." in parts or not parts:
        raise ValueError(f"must be a path inside the workspace, without .. (got {value!r})")
    return value


class CeremonyBase(Strict):
    schema_version: Literal[1]
    ceremony_id: str
    date: IsoDate
    participants: Participants
    recording: Recording
    bags: Bags = Bags()
    #: The files the ceremony produces, by name, relative to the workspace (the archive's key map).
    outputs: dict[str, str] = Field(default_factory=dict)

    @field_validator("outputs")
    @classmethod
    def _outputs_inside(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value.values():
            inside_workspace(path)
        return value

    @field_validator("ceremony_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be 3-64 lower-case letters, digits and '-'")
        return value

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.date)


class TokenInitCeremony(CeremonyBase):
    type: Literal["token-init"]
    quorum: Quorum
    token: Token


class RootCeremony(CeremonyBase):
    type: Literal["root-ca"]
    #: The CA's name in the workspace (what issuance, backup and restore refer to).
    ca: str
    quorum: Quorum
    token: Token
    key: KeySpec
    naming: Naming


class IssuingCeremony(RootCeremony):
    type: Literal["issuing-ca"]  # type: ignore[assignment]
    #: The CA (by workspace name) that signs the issuing CA certificate.
    issuer: str


class LinkSpec(Strict):
    """The link certificates of a root rollover: each root's key and name certified by the other root."""

    profile: str
    validity_days: int = Field(gt=0)


class RootRolloverCeremony(RootCeremony):
    """A new root (key and self-signed certificate) succeeding the old one: link certificates both ways, the issuing
    CAs re-certified under the new root, and their certificates under the old root superseded on its ARL."""

    type: Literal["root-rollover"]  # type: ignore[assignment]
    #: The root CA (by workspace name) this one succeeds.
    predecessor: str
    links: LinkSpec
    #: The issuing CAs (by workspace name) re-certified under the new root, with their keys and names unchanged.
    recertify: list[str] = Field(min_length=1)
    recertify_validity_days: int = Field(gt=0)
    #: The two people a revocation takes (the superseded certificates on the old root's ARL).
    requested_by: str
    approved_by: str

    @model_validator(mode="after")
    def _two_people(self) -> RootRolloverCeremony:
        if self.requested_by == self.approved_by:
            raise ValueError(f"approved_by: a revocation needs two people (both {self.approved_by})")
        if len(set(self.recertify)) != len(self.recertify):
            raise ValueError("recertify: a CA appears twice")
        return self


class IssuingRenewalCeremony(IssuingCeremony):
    """A new generation of an issuing CA: a new key and certificate (re-key), the predecessor issuing on through
    the overlap, then only signing CRLs for what it issued."""

    type: Literal["issuing-ca-renewal"]  # type: ignore[assignment]
    #: The issuing CA (by workspace name) this one succeeds.
    predecessor: str
    #: Days from the ceremony during which the predecessor may still issue; afterwards new issuance is refused
    #: there and goes to this CA.
    overlap_days: int = Field(ge=0, le=366)


class KeyBackupCeremony(CeremonyBase):
    type: Literal["key-backup"]
    quorum: Quorum
    token: Token
    key_label: str


class KeyRestoreCeremony(CeremonyBase):
    type: Literal["key-restore"]
    quorum: Quorum
    token: Token
    key_label: str
    #: The wrapped backup file, relative to the workspace.
    backup: str
    #: The CA whose certificate the restored key must sign for (proof of restore).
    ca: str

    @field_validator("backup")
    @classmethod
    def _inside(cls, value: str) -> str:
        return inside_workspace(value)


class KeyDestructionCeremony(CeremonyBase):
    type: Literal["key-destruction"]
    #: The custodians who activate the token (their PIN shares), m of n.
    quorum: Quorum
    token: Token
    key_label: str
    reason: str

    @model_validator(mode="after")
    def _witnessed(self) -> KeyDestructionCeremony:
        if not self.participants.witnesses:
            raise ValueError("participants.witnesses: a key destruction needs at least one witness")
        return self


class SymmetricKeySpec(Strict):
    """One AES key of a symmetric-key ceremony."""

    label: str
    algorithm: Literal["aes-128", "aes-256"]
    purpose: Literal["kek", "transport-kek", "device-master-key", "data"]
    #: 0: generated on the token, never in clear outside it; 2 or 3: split knowledge, XOR components.
    components: Literal[0, 2, 3]
    #: Who holds each component, in order (one person never holds two components of one key).
    custodians: list[str] = Field(default_factory=list)
    kcv_method: Literal["ecb", "cmac"] = "ecb"
    #: Allow export wrapped under a KEK (then EXTRACTABLE; never in clear).
    wrapped_export: bool = False
    crypto_period_days: int = Field(gt=0)
    rotation_days: int = Field(gt=0)
    serves: str

    @model_validator(mode="after")
    def _holders(self) -> SymmetricKeySpec:
        if len(self.custodians) != self.components:
            raise ValueError(f"custodians: {self.components} components need {self.components} custodians")
        if len(set(self.custodians)) != len(self.custodians):
            raise ValueError("custodians: one person would hold two components of one key")
        if self.rotation_days > self.crypto_period_days:
            raise ValueError("rotation_days: rotation falls after the end of the crypto-period")
        if self.components == 0 and self.kcv_method == "cmac":
            raise ValueError("kcv_method: a key generated on the token gets the token's KCV (ecb)")
        return self

    @property
    def length(self) -> int:
        return 16 if self.algorithm == "aes-128" else 32


class SymmetricKeyCeremony(CeremonyBase):
    type: Literal["symmetric-key"]
    #: The custodians who activate the token (their PIN shares), m of n.
    quorum: Quorum
    token: Token
    keys: list[SymmetricKeySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_holders(self) -> SymmetricKeyCeremony:
        seated = set(self.participants.custodians)
        for i, key in enumerate(self.keys):
            for j, pid in enumerate(key.custodians):
                if pid not in seated:
                    raise ValueError(f"keys[{i}].custodians[{j}]: {pid} is not among participants.custodians")
        labels = [k.label for k in self.keys]
        if len(set(labels)) != len(labels):
            raise ValueError("keys: a label appears twice")
        return self


class KeyRotationCeremony(CeremonyBase):
    """A successor for a symmetric key: generated on the token, dependants re-wrapped, the old key retired."""

    type: Literal["key-rotation"]
    #: The custodians who activate the token (their PIN shares), m of n.
    quorum: Quorum
    token: Token
    key_label: str
    successor_label: str
    crypto_period_days: int = Field(gt=0)
    rotation_days: int = Field(gt=0)


class _CustodyChange(CeremonyBase):
    """What the ceremonies that re-split a secret share: the new split, the token, why, and who of the current
    holders leaves."""

    #: The new split, m-of-n among participants.custodians.
    quorum: Quorum
    token: Token
    reason: str = Field(min_length=10)
    #: Holders of the current shares who leave: they present nothing and get no new share.
    leaving: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _leavers_unseated(self) -> _CustodyChange:
        for i, pid in enumerate(self.leaving):
            if pid in self.participants.custodians:
                raise ValueError(f"leaving[{i}]: {pid} leaves, so is not among participants.custodians")
        return self


class _PinCeremony(_CustodyChange):
    """What the PIN ceremonies share (the token is the workspace's own)."""


class PinChangeCeremony(_PinCeremony):
    """New PINs for the workspace's token, split afresh among ``participants.custodians`` (which may differ from
    the holders of the current shares: a custodian change), the old cards retired under witness."""

    type: Literal["pin-change"]
    #: Which PINs change: the user PIN (C_SetPIN by the user, activated by a quorum of its current shares) and/or
    #: the SO PIN (C_SetPIN by the SO, who logs in with a quorum of the current SO shares).
    pins: list[Literal["user", "so"]] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> PinChangeCeremony:
        if len(set(self.pins)) != len(self.pins):
            raise ValueError("pins: a PIN appears twice")
        return self


class UserPinResetCeremony(_PinCeremony):
    """The SO, logged in with a quorum of the SO PIN's shares, sets a new user PIN (C_InitPIN): the way back when
    no quorum of the user PIN's shares can be gathered. The new user PIN is split among the custodians."""

    type: Literal["user-pin-reset"]


class BackupRewrapCeremony(_CustodyChange):
    """A custodian change of a CA key's backup: the backup is restored into a scratch token (``token``), wrapped
    there under a new backup key split among ``participants.custodians``, the new backup restore-tested, both
    copies on the scratch token destroyed, and the old backup and its cards recorded retired. The live key is not
    touched (it stays non-extractable)."""

    type: Literal["backup-rewrap"]
    key_label: str
    #: The backup being replaced, relative to the workspace (its .json beside it).
    backup: str
    #: The CA whose certificate the key must sign for (the restore test of the new backup).
    ca: str

    @field_validator("backup")
    @classmethod
    def _inside(cls, value: str) -> str:
        return inside_workspace(value)

    @model_validator(mode="after")
    def _witnessed(self) -> BackupRewrapCeremony:
        if not self.participants.witnesses:
            raise ValueError("participants.witnesses: a backup re-wrap destroys keys; it needs at least one witness")
        return self


class CaRevocationCeremony(CeremonyBase):
    """A CA's certificate revoked after its key's compromise, the ARL that lists it signed by the issuer's key in
    the ceremony, every certificate the revoked CA issued that is still valid listed, and the incident's timeline."""

    type: Literal["ca-revocation"]
    #: The CA (by workspace name) whose certificate is revoked, e.g. the issuing CA.
    ca: str
    #: The CA whose key signs the ARL listing it: the revoked CA's issuer (the root).
    issuer: str
    #: RFC 5280 5.3.1: a CA's certificate is revoked for a compromise, of its key or of the CA.
    reason: Literal["keyCompromise", "cACompromise"]
    #: The incident (its id in registers/incidents.yaml) the revocation answers.
    incident: str
    #: Two different people of the participant register: who asks, and an approver who approves.
    requested_by: str
    approved_by: str
    #: The custodians who activate the token (their PIN shares), m of n.
    quorum: Quorum
    token: Token

    @model_validator(mode="after")
    def _two_people_witnessed(self) -> CaRevocationCeremony:
        if self.requested_by == self.approved_by:
            raise ValueError(
                f"approved_by: a revocation needs two people; requested_by and approved_by are both {self.approved_by}"
            )
        if self.issuer == self.ca:
            raise ValueError(f"issuer: CA {self.ca} cannot sign the ARL that revokes its own certificate")
        if not self.participants.witnesses:
            raise ValueError("participants.witnesses: a CA revocation needs at least one witness")
        return self


CEREMONY_TYPES: dict[str, type[CeremonyBase]] = {
    "token-init": TokenInitCeremony,
    "root-ca": RootCeremony,
    "issuing-ca": IssuingCeremony,
    "issuing-ca-renewal": IssuingRenewalCeremony,
    "root-rollover": RootRolloverCeremony,
    "key-backup": KeyBackupCeremony,
    "key-restore": KeyRestoreCeremony,
    "backup-rewrap": BackupRewrapCeremony,
    "key-destruction": KeyDestructionCeremony,
    "symmetric-key": SymmetricKeyCeremony,
    "key-rotation": KeyRotationCeremony,
    "pin-change": PinChangeCeremony,
    "user-pin-reset": UserPinResetCeremony,
    "ca-revocation": CaRevocationCeremony,
}


@dataclass(frozen=True)
class CeremonyFile:
    path: Path
    sha256: str
    spec: CeremonyBase


#: The largest ceremony file read (the shipped examples are under 4 KiB): refused before it is parsed.
MAX_CEREMONY_FILE_BYTES = 1 << 20


def load_ceremony(path: Path) -> CeremonyFile:
    """Read a ceremony file strictly, choosing the model by its ``type``; the hash is of the bytes parsed.

    The file must be a regular file (not a link, FIFO or device) of at most ``MAX_CEREMONY_FILE_BYTES``.
    """
    raw = read_yaml_bytes(path, MAX_CEREMONY_FILE_BYTES, "ceremony file")
    data, lines = parse_yaml_lines(raw, str(path))
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in CEREMONY_TYPES:
        short = kind is None or isinstance(kind, str | int) and len(repr(kind)) <= 40
        shown = repr(kind) if short else f"a {type(kind).__name__}"
        raise ConfigError(f"{path}: type must be one of {', '.join(CEREMONY_TYPES)} (got {shown})")
    spec = parse_model(CEREMONY_TYPES[kind], data, str(path), lines)
    return CeremonyFile(path, hashlib.sha256(raw).hexdigest(), spec)


# --- pre-flight ---------------------------------------------------------------------------
_ROLE_OF = {
    "administrator": "administrator",
    "operators": "operator",
    "custodians": "custodian",
    "witnesses": "witness",
}


def _seats(p: Participants) -> list[tuple[str, str]]:
    """(field path, person id) for every seat in the ceremony."""
    seats = [("participants.administrator", p.administrator)]
    for field in ("operators", "custodians", "witnesses"):
        seats += [(f"participants.{field}[{i}]", pid) for i, pid in enumerate(getattr(p, field))]
    return seats


#: The ceremonies that work on the workspace's own token (restore and backup name a token of their own; a PIN
#: ceremony may name any token initialised in the workspace, e.g. a restore test's).
WORKSPACE_TOKEN_TYPES = (
    "token-init",
    "root-ca",
    "issuing-ca",
    "issuing-ca-renewal",
    "root-rollover",
    "ca-revocation",
)


def check_workspace_token(ceremony: CeremonyFile, token_label: str | None) -> None:
    """Refuse, at approval, a ceremony file naming another token than the workspace's: approving it would
    approve a ceremony this workspace can never run (its procedure refuses it again before any step)."""
    spec = ceremony.spec
    label = getattr(getattr(spec, "token", None), "label", None)
    kind = getattr(spec, "type", None)
    if kind in WORKSPACE_TOKEN_TYPES and token_label is not None and label != token_label:
        raise ConfigError(
            f"{ceremony.path}: token.label: this workspace's ceremonies use token {token_label!r} "
            f"(workspace.yaml key_store.token_label), not {label!r}; correct the file and have it approved"
        )


def preflight(ceremony: CeremonyFile, register: Register, policy: PolicyParameters) -> None:
    """Refuse a ceremony the register or the policy forbids; the error names the field path."""
    spec, rules, src = ceremony.spec, policy.ceremony, str(ceremony.path)
    people = register.people
    for where, pid in _seats(spec.participants):
        if pid not in people:
            raise ConfigError(f"{src}: {where}: {pid!r} is not in the participant register")
        role = _ROLE_OF[where.split(".")[1].split("[")[0]]
        person = people[pid]
        if person.left is not None and dt.date.fromisoformat(person.left) <= spec.day:
            raise ConfigError(f"{src}: {where}: {pid} left the PKI on {person.left} (ceremony date {spec.date})")
        if role not in person.roles and not (role == "witness" and "auditor" in person.roles):
            raise ConfigError(
                f"{src}: {where}: {pid} is not registered for the {role} role (registered: {', '.join(person.roles)})"
            )
        for what, until in (("vetting", person.vetting_expires), ("training", person.training_expires)):
            if dt.date.fromisoformat(until) < spec.day:
                raise ConfigError(f"{src}: {where}: {pid}'s {what} expired {until} (ceremony date {spec.date})")
    operational = {pid: where for where, pid in _seats(spec.participants) if ".witnesses" not in where}
    for i, pid in enumerate(spec.participants.witnesses):
        if pid in operational:
            raise ConfigError(
                f"{src}: participants.witnesses[{i}]: {pid} is also {operational[pid]}; a witness holds no other role"
            )
    if len(spec.participants.witnesses) < rules.witnesses_min:
        raise ConfigError(f"{src}: participants.witnesses: at least {rules.witnesses_min} witness(es) required")
    custodians = spec.participants.custodians
    for i, pid in enumerate(custodians):
        if pid in custodians[:i]:
            raise ConfigError(f"{src}: participants.custodians[{i}]: {pid} would hold two shares")
    quorum: Quorum | None = getattr(spec, "quorum", None)
    if quorum is not None:
        if quorum.n != len(custodians):
            raise ConfigError(f"{src}: quorum.n: {quorum.n} shares but {len(custodians)} custodians")
        if quorum.m > quorum.n:
            raise ConfigError(f"{src}: quorum.m: {quorum.m} of {quorum.n} is impossible")
        if quorum.m < rules.min_quorum_m or quorum.n > rules.max_quorum_n:
            raise ConfigError(
                f"{src}: quorum: policy allows m >= {rules.min_quorum_m} and n <= "
                f"{rules.max_quorum_n} (got {quorum.m}-of-{quorum.n})"
            )
        organisations = {people[pid].organisation for pid in custodians}
        if len(organisations) < rules.custodian_organisations_min:
            raise ConfigError(
                f"{src}: participants.custodians: all from {', '.join(sorted(organisations))}; "
                f"policy requires custodians from at least {rules.custodian_organisations_min} "
                "organisations"
            )
        missing = [pid for pid in custodians if pid not in spec.bags.share_cards]
        if missing:
            raise ConfigError(f"{src}: bags.share_cards: no tamper-evident bag for {', '.join(missing)}")
    if isinstance(spec, RootCeremony):
        _preflight_naming(spec, src)
    if isinstance(spec, CaRevocationCeremony):
        _preflight_revocation(spec, src, register)


def _preflight_revocation(spec: CaRevocationCeremony, src: str, register: Register) -> None:
    """A CA revocation's two people, as ``ceremony revoke`` checks them: the requester is in the register, the
    approver is registered for the approver role (the workspace's CAs and incidents are checked at begin)."""
    people = register.people
    if spec.requested_by not in people:
        raise ConfigError(f"{src}: requested_by: {spec.requested_by!r} is not in the participant register")
    approver = people.get(spec.approved_by)
    if approver is None:
        raise ConfigError(f"{src}: approved_by: {spec.approved_by!r} is not in the participant register")
    if "approver" not in approver.roles:
        raise ConfigError(
            f"{src}: approved_by: {spec.approved_by} is not registered for the approver role "
            f"(registered: {', '.join(approver.roles)})"
        )


#: The profile kind each CA ceremony issues under.
_CA_PROFILE_KIND = {
    "root-ca": "root-ca",
    "issuing-ca": "issuing-ca",
    "issuing-ca-renewal": "issuing-ca",
    "root-rollover": "root-ca",
}


def _preflight_naming(spec: RootCeremony, src: str) -> None:
    """What the certificate step will ask of the naming document and the key spec, asked of the file: the
    profile exists and is the ceremony's kind of CA profile, allows the key algorithm, and allows the validity
    (the profile's own rules, :func:`ceremony.model.tbs.check_validity`), before any key is generated."""
    from ceremony.model.profiles import get_profile
    from ceremony.model.tbs import check_validity

    fix = "correct the file and have it approved again"
    try:
        profile = get_profile(spec.naming.profile)
    except InputError as exc:
        raise ConfigError(f"{src}: naming.profile: {exc.message}; {fix}") from None
    wanted = _CA_PROFILE_KIND[spec.type]
    if profile.rules.kind != wanted:
        raise ConfigError(
            f"{src}: naming.profile: {profile.name} is for {profile.rules.kind} certificates; a {spec.type} "
            f"ceremony issues under a {wanted} profile; {fix}"
        )
    allowed = profile.rules.key_algorithms
    if spec.key.algorithm not in allowed:
        raise ConfigError(
            f"{src}: key.algorithm: profile {profile.name} allows {', '.join(allowed)} (got {spec.key.algorithm}); "
            f"{fix}"
        )
    start = dt.datetime.combine(spec.day, dt.time(), tzinfo=dt.timezone.utc)
    try:
        check_validity(profile, spec.naming.validity_days, start)
    except InputError as exc:
        raise ConfigError(f"{src}: naming.validity_days: {exc.message}; {fix}") from None


# --- approvals ------------------------------------------------------------------------------
def approvals(journal_entries: list[dict[str, Any]], sha256: str) -> list[str]:
    """Distinct people who approved the ceremony file with this SHA-256, in order."""
    seen: list[str] = []
    for entry in journal_entries:
        if entry.get("event") == Event.CEREMONY_APPROVE and entry.get("sha256") == sha256 and entry["by"] not in seen:
            seen.append(entry["by"])
    return seen


def check_approver(person_id: str, register: Register) -> None:
    person = register.people.get(person_id)
    if person is None:
        raise InputError(f"--by: {person_id!r} is not in the participant register")
    if "approver" not in person.roles:
        raise InputError(f"--by: {person_id} is not registered for the approver role")


def require_approvals(
    ceremony: CeremonyFile, approved_by: list[str], policy: PolicyParameters, *, rehearsal: bool
) -> str | None:
    """A live run needs the policy's number of approvals; a rehearsal runs anyway and says so."""
    needed = policy.ceremony.approvals_required
    if len(approved_by) >= needed:
        return None
    text = (
        f"{ceremony.path}: {len(approved_by)} of {needed} approvals of sha256 {ceremony.sha256[:16]}… "
        f"({', '.join(approved_by) or 'none'})"
    )
    if rehearsal:
        return f"REHEARSAL without full approval: {text}"
    raise InputError(f"{text}; run `ceremony approve FILE --by PERSON`, or rehearse with --rehearsal")


def record_approval(journal: Any, ceremony: CeremonyFile, by: str, register: Register) -> int:
    """Journal ``by``'s approval of the ceremony file's SHA-256; returns the approvals now on record."""
    check_approver(by, register)
    done = approvals(journal.entries(), ceremony.sha256)
    if by in done:
        raise InputError(f"{by} has already approved {ceremony.path} (sha256 {ceremony.sha256[:16]}…)")
    journal.append(
        CeremonyApprove(
            ceremony_id=ceremony.spec.ceremony_id,
            type=str(getattr(ceremony.spec, "type", "")),
            file=str(ceremony.path),
            sha256=ceremony.sha256,
            by=by,
        ),
    )
    return len(done) + 1
