"""The evidence the control checks read, gathered once from a workspace: inventory frames, transcripts
and their attestations, the operations journal, the participant register, the registers, CRL files,
and the key attributes read from the token. Each piece loads on first use, so a check that crashes
on one piece does not stop the others.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from ceremony.errors import CeremonyError, ConfigError
from ceremony.fs import read_regular
from ceremony.model.events import Event
from ceremony.model.people import Register, default_register, load_register
from ceremony.model.policy import PolicyParameters, load_policy
from ceremony.procedures.attestation import AttestationStatus, attestation_status
from ceremony.record.transcript import ChainStatus, TranscriptReport, read_entries, verify_transcript
from ceremony.record.workspace import Workspace


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@dataclass
class CeremonyRecord:
    """One live ceremony transcript, read and verified."""

    path: Path
    entries: list[dict[str, Any]]
    report: TranscriptReport

    @property
    def start(self) -> dict[str, Any]:
        return self.entries[0] if self.entries else {}

    @property
    def ceremony_id(self) -> str:
        return str(self.start.get("ceremony_id") or self.path.stem)

    @property
    def type(self) -> str:
        return str(self.start.get("type", "?"))

    @property
    def started(self) -> datetime | None:
        return parse_time(self.start["time"]) if "time" in self.start else None

    @property
    def ended(self) -> datetime | None:
        return parse_time(self.entries[-1]["time"]) if self.entries else None

    @property
    def sealed(self) -> bool:
        return bool(self.entries) and self.entries[-1].get("event") == Event.SEAL

    @property
    def day(self) -> date | None:
        """The ceremony's date as its file states it (the date the register checks use)."""
        text = self.start.get("ceremony", {}).get("date")
        return date.fromisoformat(text) if text else (self.started.date() if self.started else None)

    @property
    def seats(self) -> dict[str, Any]:
        return dict(self.start.get("ceremony", {}).get("participants", {}))

    def steps(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("event") == Event.STEP and e.get("step") == name]

    def splits(self) -> list[dict[str, Any]]:
        """Every m-of-n split recorded in a step's details (PIN shares, backup keys)."""
        found: list[dict[str, Any]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "shares" in node and "m" in node and "n" in node:
                    found.append(node)
                for value in node.values():
                    walk(value)

        for entry in self.entries:
            if entry.get("event") == Event.STEP:
                walk(entry.get("details", {}))
        return found


#: A CRL of a national fleet's revocations (RFC 5280 entries of ~40 bytes) stays well below this.
CRL_FILE_LIMIT = 1 << 30
#: CRL entries kept parsed across assessments in one process (a notebook, the lifetime simulation): CRLs are
#: published weekly, each listing every revocation still current, so the same entries are read again and again.
_PARSED_ENTRIES_KEPT = 500_000  # about 100 MB


@dataclass(frozen=True)
class CrlFile:
    """A published CRL file as the checks read it: the SHA-256 of its bytes and, when it parses, the CRL and
    its entries as (serial in 32 hex digits, reason, revocation date)."""

    sha256: str
    crl: Any  # cryptography's CertificateRevocationList, or None: not a CRL
    entries: tuple[tuple[str, str, datetime], ...] = ()
    _verified: dict[bytes, bool] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def serials(self) -> frozenset[str]:
        return frozenset(serial for serial, _, _ in self.entries)

    def signed_by(self, public_key: Any) -> bool:
        """Whether its signature verifies under ``public_key`` (each key checked once per file)."""
        from cryptography.hazmat.primitives import serialization

        spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if spki not in self._verified:
            self._verified[spki] = bool(self.crl is not None and self.crl.is_signature_valid(public_key))
        return self._verified[spki]


_parsed: OrderedDict[str, CrlFile] = OrderedDict()
_kept = [0]  # entries (plus one per file) held in _parsed


def crl_file(data: bytes) -> CrlFile:
    """``data`` parsed as a DER CRL; the same bytes are parsed once per process (kept by their SHA-256, the
    least recently read dropped first once more than ``_PARSED_ENTRIES_KEPT`` entries are kept)."""
    from cryptography import x509

    digest = hashlib.sha256(data).hexdigest()
    if digest in _parsed:
        _parsed.move_to_end(digest)
        return _parsed[digest]
    try:
        crl = x509.load_der_x509_crl(data)
        entries = tuple(
            (f"{r.serial_number:032X}", _reason(r), r.revocation_date_utc) for r in crl
        )  # the entries are parsed here, lazily by cryptography: a malformed one is "not a CRL"
    except ValueError:
        crl, entries = None, ()
    parsed = CrlFile(digest, crl, entries)
    _parsed[digest] = parsed
    _kept[0] += len(entries) + 1
    while _kept[0] > _PARSED_ENTRIES_KEPT and len(_parsed) > 1:
        _, dropped = _parsed.popitem(last=False)
        _kept[0] -= len(dropped.entries) + 1
    return parsed


def _reason(revoked: Any) -> str:
    from cryptography import x509

    try:
        return str(revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason.value)
    except x509.ExtensionNotFound:
        return "unspecified"


@dataclass(frozen=True)
class PublishedCrl:
    """A CRL the inventory records, with what its file holds (``file`` None: no such regular file)."""

    row: Any  # the frames.crls row
    file: CrlFile | None

    @property
    def subject(self) -> str:
        return f"{self.row.kind} {self.row.issuer_ca} #{self.row.number}"


class MissingRegister(CeremonyError):
    """The workspace keeps no such register: the checks that need it cannot decide (never the examples)."""


class _Registers(dict[str, Any]):
    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace

    def __missing__(self, name: str) -> Any:
        from ceremony.model.config import load_model
        from ceremony.model.registers import REGISTERS, Waivers

        path = self.workspace / "registers" / f"{name}.yaml"
        if not path.is_file():
            if name == "waivers":  # no waivers: nothing is waived
                self[name] = Waivers(schema_version=1, waivers=[])
                return self[name]
            raise MissingRegister(f"the workspace keeps no {name} register (registers/{name}.yaml)")
        self[name] = load_model(REGISTERS[name], path)
        return self[name]


@dataclass
class Evidence:
    """Everything the checks read. ``since``/``until`` bound the events assessed (ceremonies,
    issuance, revocations, CRLs); state (keys, registers) is assessed as of ``as_of``."""

    ws: Workspace
    #: Default: now, by the workspace's clock.
    as_of: datetime = None  # type: ignore[assignment]
    since: datetime | None = None
    until: datetime | None = None
    #: Results several checks share (the certificate pass, parsed CRLs), computed once.
    cache: dict[str, Any] = field(default_factory=dict)
    #: Folders holding this workspace's earlier evidence packs (``<reports>/evidence``), whose journals the
    #: journal now must extend (LOG-03).
    pack_folders: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.as_of is None:
            self.as_of = self.ws.clock.now()

    def in_period(self, when: datetime | None) -> bool:
        if when is None:
            return True
        return (self.since is None or when >= self.since) and (self.until is None or when <= self.until)

    @cached_property
    def frames(self) -> Any:
        from ceremony.record import frames

        # Read from the database, never the columnar snapshot: the snapshot is a file in the workspace that a
        # writer could leave stale or forge (an assessment trusts no cache an insider can write; issue J).
        return frames.frames(self.ws, snapshot=False)

    @cached_property
    def crls(self) -> list[PublishedCrl]:
        """Every CRL the inventory records and its file, read bounded and never through a link."""
        out = []
        for row in self.frames.crls.itertuples():
            try:
                data = read_regular(self.ws.root / str(row.artifact), CRL_FILE_LIMIT, "CRL file")
            except CeremonyError:
                data = None
            out.append(PublishedCrl(row, crl_file(data) if data else None))
        return out

    @cached_property
    def policy(self) -> PolicyParameters:
        return load_policy()

    @cached_property
    def register(self) -> Register:
        """The workspace's own participant register (never the example in data/): without one, the checks
        that need it cannot decide."""
        try:
            path = default_register(self.ws.root)
        except ConfigError as exc:
            raise MissingRegister(exc.diagnostics()) from exc
        return load_register(path)

    @cached_property
    def registers(self) -> dict[str, Any]:
        """Each of the workspace's registers, read on first use, so a malformed one fails only the checks
        that read it, and a missing one makes them indeterminate (the examples in data/ never stand in)."""
        return _Registers(self.ws.root)

    @cached_property
    def journal(self) -> list[dict[str, Any]]:
        return self.ws.journal.entries()

    @cached_property
    def journal_status(self) -> ChainStatus:
        return self.ws.journal.verify()

    @cached_property
    def all_ceremonies(self) -> list[CeremonyRecord]:
        """Every live transcript (the rehearsal area is not assessed: nothing there is live)."""
        records = []
        for path in sorted(self.ws.transcripts_dir.glob("*.jsonl")):
            if path.name.endswith(".attestations.jsonl"):
                continue
            records.append(CeremonyRecord(path, read_entries(path), verify_transcript(path)))
        return records

    @cached_property
    def ceremonies(self) -> list[CeremonyRecord]:
        """The live ceremonies that started in the period."""
        return [c for c in self.all_ceremonies if self.in_period(c.started)]

    def attestations(self, ceremony: CeremonyRecord) -> AttestationStatus:
        return attestation_status(ceremony.path, self.register)

    @cached_property
    def compromised_cas(self) -> dict[str, str]:
        """CA name -> when its own certificate was revoked for a compromise of its key (RFC 5280 5.3.1
        keyCompromise, cACompromise): from then on its issuer's ARL says everything under it is invalid, and a
        CRL signed with the compromised key would prove nothing, so it publishes none (REV-01, the calendar)."""
        from ceremony.record.revocations import revocation

        out: dict[str, str] = {}
        inventory = self.ws.inventory
        for name in inventory.ca_names():
            ca = inventory.ca(name)
            if ca.issuer_ca is None:
                continue
            done = revocation(inventory, ca.issuer_ca, ca.serial)
            if done is not None and done.reason in ("keyCompromise", "cACompromise"):
                out[name] = done.revoked_at
        return out

    @cached_property
    def scope(self) -> set[str]:
        """What this S1SP runs: a PKI (CAs in the inventory), symmetric keys, or both. A workspace that
        runs neither yet is assessed against every control: nothing is "not applicable" by default."""
        f = self.frames
        scope = ({"pki"} if len(f.cas) else set()) | ({"symmetric"} if len(f.symmetric_keys) else set())
        return scope or {"pki", "symmetric"}

    @cached_property
    def token_objects(self) -> dict[str, list[str]]:
        """Private-key labels on each token the workspace can open (its own token)."""
        store = self.ws.key_store
        return {self.ws.token_label or "software": sorted(store.labels())}
