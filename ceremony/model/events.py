"""Every journal, transcript and attestation-log event, named once, as a typed record with its fields.

Writers build these records and hand them to :meth:`ceremony.record.transcript.Journal.append`; checks
and readers compare an entry's ``event`` with :class:`Event` and a step's ``step`` with :class:`Action`.
No event or action name is written as a string anywhere else (``tests/record/test_events.py``).

An entry on disk is ``{"seq", "time", "prev", "event", <the record's fields>, "hash"}``: a record's
fields in declaration order, then its ``extra`` (what a caller adds, e.g. a ceremony's own start fields),
flattened. Fields that are None are written as null, so every entry of an event has the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar


class Event(StrEnum):
    """What an entry records (its ``event``)."""

    # the operations journal
    WORKSPACE_INIT = "workspace.init"
    WORKSPACE_BACKUP = "workspace.backup"
    WORKSPACE_RESTORE = "workspace.restore"
    CEREMONY_APPROVE = "ceremony.approve"
    CEREMONY_ABANDON = "ceremony.abandon"
    CA_CREATE = "ca.create"
    CERTIFICATE_ISSUE = "certificate.issue"
    CERTIFICATE_DISCARDED = "certificate.discarded"
    CERTIFICATE_REVOKE = "certificate.revoke"
    BATCH_START = "batch.start"
    BATCH_RESUME = "batch.resume"
    BATCH_REFUSED = "batch.refused"
    BATCH_COMPLETE = "batch.complete"
    CRL_PUBLISH = "crl.publish"
    CRL_RECOVER = "crl.recover"
    CERTIFICATE_RECOVER = "certificate.recover"
    REVOCATION_RECOVER = "revocation.recover"
    INVENTORY_IMPORT = "inventory.import"
    KEY_EXPORT = "key.export"
    KEY_IMPORT = "key.import"
    KEY_ROTATE = "key.rotate"
    KEY_DESTROYED = "key.destroyed"
    KEY_USE_REFUSED = "key.use_refused"
    SYMMETRIC_CREATE = "symmetric.create"
    TOKEN_ACTIVATED = "token.activated"  # noqa: S105 - an event name
    TOKEN_ACTIVATION_ENDED = "token.activation_ended"  # noqa: S105 - an event name
    JOURNAL_CHECKPOINT = "journal.checkpoint"
    REGISTER_RECORD = "register.record"
    TIMESTAMP_TOKEN = "timestamp.token"  # noqa: S105 - an event name
    # a ceremony transcript
    CEREMONY_START = "ceremony.start"
    STEP = "step"
    STEP_FAILED = "step.failed"
    DEVIATION = "deviation"
    ABANDON = "abandon"
    SEAL = "seal"
    # a transcript's attestation log
    ATTEST = "attest"


class Action(StrEnum):
    """What a ceremony step did (a ``step`` entry's ``step``)."""

    TOKEN_INITIALISE = "token.initialise"  # noqa: S105 - a step name
    TOKEN_ACTIVATE = "token.activate"  # noqa: S105 - a step name
    REHEARSAL_TOKEN = "rehearsal.token"  # noqa: S105 - a step name
    KEY_GENERATE = "key.generate"
    CERTIFICATE_ISSUE = "certificate.issue"
    NAMING_CHECK = "naming.check"
    FINGERPRINT_STATEMENT = "fingerprint.statement"
    KEY_ATTRIBUTES = "key.attributes"
    CUSTODY_SPLIT = "custody.split"
    KEY_WRAP = "key.wrap"
    CUSTODY_COMBINE = "custody.combine"
    KEY_UNWRAP = "key.unwrap"
    KEY_PROVE = "key.prove"
    KEY_FORBID_EXPORT = "key.forbid_export"
    KEY_IDENTIFY = "key.identify"
    KEY_DESTROY = "key.destroy"
    COMPONENTS_GENERATE = "components.generate"
    KEYS_CREATE = "keys.create"
    KEYS_REGISTER = "keys.register"
    KEY_SUCCESSOR = "key.successor"
    KEYS_REWRAP = "keys.rewrap"
    KEY_RETIRE = "key.retire"
    PIN_CHANGE = "pin.change"  # noqa: S105 - a step name
    PIN_RESET = "pin.reset"  # noqa: S105 - a step name
    PIN_VERIFY = "pin.verify"  # noqa: S105 - a step name
    CARDS_RETIRE = "share_cards.retire"
    CA_SUCCESSION = "ca.succession"
    CA_REVOKE = "ca.revoke"
    ARL_PUBLISH = "arl.publish"
    AFFECTED_LIST = "affected.list"
    INCIDENT_RECORD = "incident.record"


@dataclass(frozen=True, kw_only=True)
class Record:
    """An event with its fields; subclasses name the event."""

    EVENT: ClassVar[Event]
    #: Fields a caller adds beyond the declared ones (flattened into the entry, after them).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def entry_fields(self) -> dict[str, Any]:
        """The entry's fields, in declaration order, then ``extra``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        clash = set(out) & set(self.extra)
        if clash:
            raise ValueError(f"{self.EVENT}: extra fields {sorted(clash)} shadow declared ones")
        return out | dict(self.extra)


# --- the operations journal ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class WorkspaceInit(Record):
    EVENT = Event.WORKSPACE_INIT
    key_store: str
    token_label: str
    token_initialised: bool
    purpose: str


@dataclass(frozen=True, kw_only=True)
class WorkspaceBackup(Record):
    EVENT = Event.WORKSPACE_BACKUP
    archive: str
    sha256: str
    files: int


@dataclass(frozen=True, kw_only=True)
class WorkspaceRestore(Record):
    EVENT = Event.WORKSPACE_RESTORE
    archive: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class CeremonyApprove(Record):
    EVENT = Event.CEREMONY_APPROVE
    file: str
    sha256: str
    ceremony_id: str
    type: str
    by: str


@dataclass(frozen=True, kw_only=True)
class CeremonyAbandon(Record):
    """A failed or interrupted ceremony abandoned (``ceremony abandon``): what it left on the token destroyed
    under two witnesses, its transcript sealed as abandoned."""

    EVENT = Event.CEREMONY_ABANDON
    ceremony_id: str
    type: str
    reason: str
    witnesses: list[str]
    destroyed: list[Any]
    tokens_deleted: list[str]
    transcript: str


@dataclass(frozen=True, kw_only=True)
class CertificateStored(Record):
    """A certificate the workbench signed and recorded: a CA's (``ca.create``) or an end entity's."""

    EVENT = Event.CERTIFICATE_ISSUE
    actor: str
    approved_by: str
    ca: str
    profile: str
    serial: str
    eui64: str | None
    usage: str | None
    role: str | None
    csr_sha256: str | None
    fingerprint: str
    outputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class CaCreate(CertificateStored):
    EVENT = Event.CA_CREATE


@dataclass(frozen=True, kw_only=True)
class CertificateDiscarded(Record):
    EVENT = Event.CERTIFICATE_DISCARDED
    actor: str
    approved_by: str
    ca: str
    profile: str
    serial: str
    fingerprint: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CertificateRevoke(Record):
    EVENT = Event.CERTIFICATE_REVOKE
    actor: str
    requested_by: str
    approved_by: str
    ca: str
    serials: list[str]
    eui64: str | None
    reason: str
    revoked_at: str


@dataclass(frozen=True, kw_only=True)
class BatchStart(Record):
    """A batch opened (``batch.start``), or an interrupted one taken up again (:class:`BatchResume`)."""

    EVENT = Event.BATCH_START
    batch_id: str
    actor: str
    approved_by: str
    ca: str
    profile: str
    devices: str
    list_sha256: str
    requested: int
    already_issued: int
    rejected: int
    rejects_file: str | None
    rekey: bool
    jobs: int


@dataclass(frozen=True, kw_only=True)
class BatchResume(BatchStart):
    EVENT = Event.BATCH_RESUME


@dataclass(frozen=True, kw_only=True)
class BatchRefused(Record):
    EVENT = Event.BATCH_REFUSED
    batch_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class BatchComplete(Record):
    EVENT = Event.BATCH_COMPLETE
    batch_id: str
    ca: str
    count: int
    first_serial: str | None
    last_serial: str | None
    serials_sha256: str
    outputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class CrlPublish(Record):
    """A CRL or ARL published; ``by`` is the registered operator who published it (entries written before
    issue K have no ``by``: read it with ``entry.get("by")``)."""

    EVENT = Event.CRL_PUBLISH
    actor: str
    by: str
    ca: str
    kind: str
    number: int
    entries: int
    this_update: str
    next_update: str
    outputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class CrlRecover(Record):
    EVENT = Event.CRL_RECOVER
    actor: str
    ca: str
    kind: str
    number: int
    why: str
    outputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class CertificateRecover(Record):
    """A certificate file an interrupted issuance wrote but never recorded, verified under its CA and recorded
    now (``approved_by``, ``profile`` and ``csr_sha256`` from the interrupted run's journal line when it has one;
    otherwise ``approved_by`` is ``unrecorded`` and the profile the one the certificate passes)."""

    EVENT = Event.CERTIFICATE_RECOVER
    actor: str
    ca: str
    serial: str
    fingerprint: str
    profile: str
    eui64: str | None
    usage: str | None
    approved_by: str
    why: str
    outputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class RevocationRecover(Record):
    """A journalled revocation whose inventory commit an interrupted process never made, applied now."""

    EVENT = Event.REVOCATION_RECOVER
    actor: str
    ca: str
    serials: list[str]
    reason: str
    revoked_at: str
    #: The ``seq`` of the ``certificate.revoke`` entry this one completes.
    revoke_seq: int
    why: str


@dataclass(frozen=True, kw_only=True)
class InventoryImport(Record):
    """Foreign certificates imported; ``by`` is the registered operator who imported them (entries written
    before issue K have no ``by``)."""

    EVENT = Event.INVENTORY_IMPORT
    actor: str
    by: str
    paths: list[str]
    imported: int
    already: int
    by_profile: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class KeyExport(Record):
    EVENT = Event.KEY_EXPORT
    actor: str
    key: str
    kek: str
    kcv: str
    outputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class KeyImport(Record):
    EVENT = Event.KEY_IMPORT
    actor: str
    key: str
    kek: str
    kcv: str
    inputs: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class KeyRotate(Record):
    EVENT = Event.KEY_ROTATE
    ceremony_id: str
    key: str
    successor: str
    kcv: str


@dataclass(frozen=True, kw_only=True)
class KeyDestroyed(Record):
    EVENT = Event.KEY_DESTROYED
    ceremony_id: str
    token_label: str | None
    key_label: str
    public_key_sha256: str | None
    reason: str
    rehearsal: bool


@dataclass(frozen=True, kw_only=True)
class KeyUseRefused(Record):
    EVENT = Event.KEY_USE_REFUSED
    key_label: str
    token_label: str | None


@dataclass(frozen=True, kw_only=True)
class SymmetricCreate(Record):
    EVENT = Event.SYMMETRIC_CREATE
    ceremony_id: str
    token: str | None
    keys: list[Any]


@dataclass(frozen=True, kw_only=True)
class TokenActivated(Record):
    """Custodians opened the token for daily work: a bounded session held by one process (ceremony.keys.agent)."""

    EVENT = Event.TOKEN_ACTIVATED
    session: str
    token_label: str
    custodians: list[str]
    shares_presented: Mapping[str, str]
    quorum_m: int
    expires: str
    max_operations: int
    pid: int


@dataclass(frozen=True, kw_only=True)
class TokenActivationEnded(Record):
    """The activation session ended: expired, its operations used up, ended by an officer, or found gone."""

    EVENT = Event.TOKEN_ACTIVATION_ENDED
    session: str
    token_label: str
    reason: str
    operations: int | None


@dataclass(frozen=True, kw_only=True)
class JournalCheckpoint(Record):
    """The journal's head (its first ``entries`` entries, ending in ``head``) signed with a token key, at a
    ceremony's seal, a CRL's publication or a batch's completion. ``anchors`` names what else the
    checkpoint vouches for (a sealed transcript's head, a CRL's hash). Kept in the journal and, line for
    line, in ``checkpoints.jsonl`` beside it."""

    EVENT = Event.JOURNAL_CHECKPOINT
    checkpoint: int
    workspace: str
    entries: int
    head: str
    reason: str
    anchors: Mapping[str, str]
    signed_at: str
    key_label: str
    public_key: str
    signature: str


@dataclass(frozen=True, kw_only=True)
class RegisterRecord(Record):
    """A register file (people.yaml, registers/*.yaml) as it now reads, put on record by the person
    answerable for the change; ``people`` lists the participant register's ids (people.yaml only)."""

    EVENT = Event.REGISTER_RECORD
    register: str
    sha256: str
    by: str
    reason: str
    people: list[str] | None


@dataclass(frozen=True, kw_only=True)
class TimestampToken(Record):
    """An RFC 3161 token from the workspace's time-stamping authority (ceremony.record.timestamps), for a
    transcript's seal or a journal checkpoint, obtained at once or, after a step made offline, at the next online
    step: what it stamps (``subject``: ``transcript seal`` or ``journal checkpoint``; ``stamped``: the transcript,
    relative to the workspace, or the checkpoint's number; ``imprint``: SHA-256 of the bytes stamped), when that was
    made by the workspace's clock (``made_at``), the TSA's time (``gen_time``) and how many seconds after (as
    measured: the two clocks are not the same clock), the token file (relative to the workspace) with its SHA-256,
    and the TSA certificate (its SHA-256 and its name). Kept in the transcript's ``.timestamps.log`` (a seal's) and
    in the operations journal (both)."""

    EVENT = Event.TIMESTAMP_TOKEN
    subject: str
    stamped: str
    imprint: str
    made_at: str
    gen_time: str
    after_seconds: float
    token: str
    token_sha256: str
    tsa: str
    tsa_name: str


# --- a ceremony transcript ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CeremonyStart(Record):
    EVENT = Event.CEREMONY_START
    ceremony_id: str
    type: str


@dataclass(frozen=True, kw_only=True)
class Step(Record):
    EVENT = Event.STEP
    step: str
    action: str
    actors: list[str]
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    result: str


@dataclass(frozen=True, kw_only=True)
class StepFailed(Record):
    EVENT = Event.STEP_FAILED
    step: str
    error: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Deviation(Record):
    EVENT = Event.DEVIATION
    what: str
    why: str
    acknowledged_by: list[str]


@dataclass(frozen=True, kw_only=True)
class Abandon(Record):
    """The ceremony is abandoned: why, who witnessed it, what was destroyed on the token and what is left to do
    by hand; the seal that follows says ``abandoned``."""

    EVENT = Event.ABANDON
    reason: str
    failure: str
    witnesses: list[str]
    #: How each witness confirmed: at the console, or named by option (an unattended run).
    confirmed: Mapping[str, str]
    destroyed: list[Any]
    tokens_deleted: list[str]
    removed: list[str]
    by_hand: list[str]


@dataclass(frozen=True, kw_only=True)
class Seal(Record):
    EVENT = Event.SEAL
    sealed_hash: str
    entries: int
    key_label: str
    public_key: str
    signature: str
    words: str


# --- a transcript's attestation log ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Attest(Record):
    EVENT = Event.ATTEST
    transcript: str
    ceremony_id: str | None
    seal_hash: str
    person: str
    participant: bool
    public_key: str
    signature: str
    #: ``token`` (the person's own PKCS#11 token) or ``file`` (a key file, for trying the tool only).
    key_kind: str
    #: The token's label, or ``file``.
    key_origin: str
