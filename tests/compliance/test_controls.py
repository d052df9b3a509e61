"""Golden cases for the S1SPKM controls: each control passes on a clean workspace and fails on one named defect."""

from __future__ import annotations

import hashlib
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony import clock
from ceremony.cli.demo import demo_register
from ceremony.compliance.assessment import run_control
from ceremony.compliance.findings import ControlFinding
from ceremony.compliance.sources import Evidence, parse_time
from ceremony.issue.crl import publish_crl
from ceremony.issue.revocation import revoke
from ceremony.issue.single import issue
from ceremony.keys.personal import TokenKey, load_file_key, token_ref
from ceremony.keys.pkcs11 import find_softhsm_module, init_softhsm_token
from ceremony.model.catalogue import load_catalogue
from ceremony.model.people import load_register
from ceremony.model.policy import load_policy
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, Usage, subject_name
from ceremony.procedures.attestation import (
    attestations_path,
    enrol_person,
    key_fingerprint,
    load_attestation_key,
    participants,
    sign_transcript,
)
from ceremony.record.registers import record_registers
from ceremony.record.transcript import GENESIS, canonical, entry_hash, read_entries
from ceremony.record.workspace import PASSPHRASE_ENV, PIN_ENV, Workspace, init_workspace
from tests.support.ceremony_files import CEREMONIES, ORDER, run
from tests.support.material import SO_PIN
from tests.support.processes import in_child

Store = Literal["software", "pkcs11"]
T = TypeVar("T")
Expected = list[tuple[str, str]]
"""The failures a defect must produce, as (subject, code), one per finding."""

#: The ceremonies run on the day their files are dated; defects are made later that morning; the
#: assessment is as of noon. The build takes seconds, so nothing the golden workspace records is
#: later than DEFECTS_AT, whatever the machine's date.
CEREMONIES_AT = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
DEFECTS_AT = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
AS_OF = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)

TOKEN, ROOT, ISSUING = "s1sp-ca-token", "s1sp-root", "s1sp-issuing"  # as data/ceremonies/*.yaml name them
ORG_EUI64, DEVICE_EUI64 = "90B3D51F30000001", "00DB123456780001"
CATALOGUE = {c.id: c for c in load_catalogue().controls}


# --- the golden workspaces ----------------------------------------------------------------------
def _day(offset: int) -> str:
    """A register date ``offset`` days from the assessment date."""
    return (AS_OF.date() + timedelta(days=offset)).isoformat()


def _at(offset_days: int, hours: float = 0) -> str:
    return (AS_OF + timedelta(days=offset_days, hours=hours)).isoformat()


def _registers() -> dict[str, dict[str, Any]]:
    """The registers of a compliant S1SP as of AS_OF: every date is relative to it."""
    approval = {"ref": "PMA-2026-041", "date": _day(-258)}
    return {
        "documents": {"schema_version": 1, "documents": [
            {"id": "s1spki-cp", "kind": "CP", "title": "S1SPKI Certificate Policy for Secure", "version": "1.2",
             "status": "in-force", "pma_approval": approval, "next_review": _day(120)},
            {"id": "s1spki-cps", "kind": "CPS", "title": "S1SPKI Certification Practice Statement", "version": "1.4",
             "status": "in-force", "pma_approval": approval, "next_review": _day(120), "implements": "s1spki-cp 1.2"},
            {"id": "s1spki-cp", "kind": "CP", "title": "S1SPKI Certificate Policy for Secure", "version": "1.1",
             "status": "superseded", "next_review": _day(-300)},
        ]},
        "assessments": {"schema_version": 1, "assessments": [
            {"id": "IA-S1-2026", "type": "initial-stage-1", "date": _day(-225), "assessor": "Wendy Walsh",
             "assessor_organisation": "Independent assessor", "outcome": "approved with caveats",
             "remediation_plan": "RP-2026-01: document the custodian replacement procedure",
             "findings": [{"id": "IA-S1-2026-F1", "summary": "custodian replacement procedure not documented",
                           "status": "closed", "due": _day(-120)}]},
            {"id": "IA-S2-2026", "type": "initial-stage-2", "date": _day(-78), "assessor": "Wendy Walsh",
             "assessor_organisation": "Independent assessor", "outcome": "approved",
             "findings": [{"id": "IA-S2-2026-F1", "summary": "bag log not countersigned", "status": "open",
                           "due": _day(45)}]},
        ]},
        "incidents": {"schema_version": 1, "incidents": [
            {"id": "INC-2026-007", "kind": "other", "summary": "courier delayed a tamper-evident bag",
             "detected_at": _at(-180)},
            {"id": "INC-2026-011", "kind": "suspected-compromise", "summary": "share card bag found resealed",
             "detected_at": _at(-40), "pma_notified_at": _at(-40, 3), "recovery_decision_at": _at(-40, 5),
             "recovery_key_used_at": _at(-40, 8)},
        ]},
        "hsms": {"schema_version": 1, "hsms": [
            {"id": "hsm-a", "model": "HSM on the inventory at FIPS 140-3 level 3 (SoftHSM2 stands in here)",
             "firmware": "7.8.4", "fips_certificate": "#4711", "fips_level": 3, "location": "ceremony room 2",
             "token_labels": [TOKEN, "s1sp-restore-token"]},
        ]},
    }  # fmt: skip


def _csr(identity: Identity, profile_name: str, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    profile = get_profile(profile_name, {})
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject_name(profile, identity))
    return builder.sign(key or ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM
    )


def _issue(
    ws: Workspace, profile: str, identity: Identity, *, approved_by: str = "bob", csr: bytes | None = None
) -> str:
    issued = issue(
        ws,
        ca_name=ISSUING,
        profile_name=profile,
        csr=csr or _csr(identity, profile),
        csr_source=f"golden:{identity.eui64}-{identity.usage}",
        identity=identity,
        approved_by=approved_by,
    )
    return issued.record.serial


def _organisation(usage: Usage) -> Identity:
    return Identity(eui64=ORG_EUI64, usage=usage, role="02", name="S1SPGOLD")


def _build(root: Path, store: Store) -> Path:
    """Every example ceremony (token, root and issuing CA, backup, restore test, destruction of the test copy,
    symmetric keys), attested by every participant; an organisation's DS and KA certificates and a device's;
    the device's DS revoked and the CRL published; the registers of a compliant S1SP."""
    with pytest.MonkeyPatch.context() as mp:
        for name in (PIN_ENV, PASSPHRASE_ENV, "CEREMONY_WORKSPACE", "CEREMONY_REGISTER", "SOFTHSM2_CONF"):
            mp.delenv(name, raising=False)
        mp.setenv(clock.PIN_VARIABLE, clock.pin(CEREMONIES_AT).to_environment())
        ws = init_workspace(root, key_store=store, token_label=TOKEN, initialise_token=False, purpose="test")
        register = demo_register(ws)
        record_registers(ws, by="alice", reason="the golden workspace's participant register")
        ws.close()
        for kind in (*ORDER, "symmetric-key"):
            run(root, CEREMONIES / f"{kind}.yaml")
        ws = Workspace.open(root)
        for transcript in _transcripts(root):
            for pid in participants(read_entries(transcript)[0]):
                key = load_attestation_key(ws.secrets_dir / "attestation" / f"{pid}.key")
                sign_transcript(transcript, pid, key, register)
        for usage in ("ds", "ka"):
            _issue(ws, "ss1sp-organisation", _organisation(usage))
            _issue(ws, "ss1sp-device", Identity(eui64=DEVICE_EUI64, usage=usage))
        revoke(
            ws,
            ca_name=ISSUING,
            reason="superseded",
            requested_by="bob",
            approved_by="alice",
            eui64=DEVICE_EUI64,
            usage="ds",
        )
        publish_crl(ws, ISSUING, by="bob")
        last = parse_time(ws.journal.entries()[-1]["time"])
        ws.close()
    assert CEREMONIES_AT <= last < DEFECTS_AT, f"the pinned clock was not honoured: the build ended at {last}"
    (root / "registers").mkdir()
    for name, content in _registers().items():
        (root / "registers" / f"{name}.yaml").write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(clock.PIN_VARIABLE, clock.pin(CEREMONIES_AT + timedelta(minutes=30)).to_environment())
        ws = Workspace.open(root)
        record_registers(ws, by="alice", reason="the registers of a compliant S1SP")
        ws.close()
    return root


@pytest.fixture(scope="module")
def golden_software(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("golden") / "ws", "software")


@pytest.fixture(scope="module")
def golden_pkcs11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if find_softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    return _build(tmp_path_factory.mktemp("golden-token") / "ws", "pkcs11")


@pytest.fixture(autouse=True)
def _own_register(monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks read the workspace's own people.yaml, never a developer's CEREMONY_REGISTER.
    monkeypatch.delenv("CEREMONY_REGISTER", raising=False)


def _copy(source: Path, target: Path) -> Path:
    """A copy to change; a SoftHSM2 token copy gets its own token directory (the conf names it absolutely)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock"))
    conf = target / "token" / "softhsm2.conf"
    if conf.is_file():
        conf.write_text(conf.read_text().replace(str(source / "token"), str(target / "token")), encoding="utf-8")
    return target


def _assess(root: Path, control: str, as_of: datetime) -> list[ControlFinding]:
    ws = Workspace.open(root, assessing=True)
    try:
        return run_control(CATALOGUE[control], Evidence(ws, as_of=as_of))
    finally:
        ws.close()


# --- what defects are made of -------------------------------------------------------------------
@dataclass
class Case:
    """A copy of a golden workspace being given a defect; ``as_of`` moves when the defect is the passing of time."""

    root: Path
    as_of: datetime = AS_OF
    opened: list[Workspace] = field(default_factory=list)

    @cached_property
    def ws(self) -> Workspace:
        """The copy, opened with a clock that reads after the build (what a defect does is dated then)."""
        ws = Workspace.open(self.root, clock=clock.pin(DEFECTS_AT))
        self.opened.append(ws)
        return ws

    def close(self) -> None:
        for ws in self.opened:
            ws.close()

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        with self.ws.inventory.transaction() as db:
            db._execute(statement, params)

    def add_certificate(self, like: str, **changes: Any) -> str:
        """Record a copy of certificate ``like`` as another certificate (its own serial and fingerprint), with
        ``changes``: a row the workbench's pipeline would never write, as an import or a hand edit could."""
        query = "SELECT * FROM certificates WHERE issuer_ca = ? AND serial = ?"
        row = dict(self.ws.inventory._execute(query, (ISSUING, like)).fetchone()._mapping)
        row.pop("rowid", None)
        row |= {"serial": secrets.token_hex(16).upper(), "fingerprint": secrets.token_hex(32)} | changes
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        self.sql(f"INSERT INTO certificates ({columns}) VALUES ({marks})", tuple(row.values()))
        return str(row["serial"])

    def serial(self, profile: str, usage: str, status: str = "valid") -> str:
        row = self.ws.inventory._execute(
            "SELECT serial FROM certificates WHERE issuer_ca = ? AND profile = ? AND usage = ? AND status = ?",
            (ISSUING, profile, usage, status),
        ).fetchone()
        return str(row[0])

    def transcript(self, ceremony_id: str) -> Path:
        return self.root / "transcripts" / f"{ceremony_id}.jsonl"

    def edit_yaml(self, name: str, change: Callable[[Any], None]) -> None:
        path = self.root / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _transcripts(root: Path) -> list[Path]:
    return sorted(p for p in (root / "transcripts").glob("*.jsonl") if not p.name.endswith(".attestations.jsonl"))


def _write(path: Path, data: bytes) -> None:
    path.chmod(0o644)  # write-once files rest read-only
    path.write_bytes(data)


def _rewrite(path: Path, change: Callable[[list[dict[str, Any]]], None], *, rechain: bool = True) -> None:
    """Edit a hash-chained log's entries; ``rechain`` recomputes the chain (a forger's edit), else it breaks."""
    entries = read_entries(path)
    change(entries)
    if rechain:
        prev = GENESIS
        for seq, entry in enumerate(entries, start=1):
            entry.update(seq=seq, prev=prev)
            entry["hash"] = entry_hash(entry)
            prev = entry["hash"]
    _write(path, b"".join(canonical(e) + b"\n" for e in entries))


def _keeping(wanted: Callable[[dict[str, Any]], bool]) -> Callable[[list[dict[str, Any]]], None]:
    """A change to a log that keeps only the entries ``wanted`` accepts."""

    def change(entries: list[dict[str, Any]]) -> None:
        entries[:] = [e for e in entries if wanted(e)]

    return change


def _step(entries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(e for e in entries if e.get("event") == "step" and e.get("step") == name)


def _unseal(path: Path) -> None:
    """The ceremony stopped before its seal: the transcript is a chained prefix with no seal entry."""
    _rewrite(path, lambda entries: entries.pop(), rechain=False)


def _certificate(serial: str) -> str:
    return f"certificate {ISSUING}/{serial}"


def _name_recording_hash(entries: list[dict[str, Any]]) -> None:
    recording = entries[0]["ceremony"]["recording"]
    recording["sha256"] = hashlib.sha256(f"archive copy of {recording['video_id']}".encode()).hexdigest()


def _hash_recordings(root: Path) -> None:
    """Each transcript names its recording's hash, as CER-08 asks; the ceremony file model has no field for it
    (``Recording`` holds ``video_id`` only), so no ceremony can record one: the transcripts are rewritten."""
    for path in _transcripts(root):
        _rewrite(path, _name_recording_hash)


# --- the defects, one per control ---------------------------------------------------------------
def _cps_unapproved(case: Case) -> Expected:
    """The CPS is in force with no PMA approval on record."""
    case.edit_yaml("registers/documents.yaml", lambda d: d["documents"][1].update(pma_approval=None))
    return [("s1spki-cps 1.4", "unapproved")]


def _stage_2_missing(case: Case) -> Expected:
    """The Initial Stage 2 assessment never happened."""
    case.edit_yaml("registers/assessments.yaml", lambda d: d["assessments"].pop(1))
    return [("assessment register", "missing-initial-stage-2")]


def _finding_overdue(case: Case) -> Expected:
    """An assessment finding is still open the day after it was due."""
    case.edit_yaml("registers/assessments.yaml", lambda d: d["assessments"][1]["findings"][0].update(due=_day(-1)))
    return [("IA-S2-2026-F1", "overdue")]


def _compromise_notified_late(case: Case) -> Expected:
    """A suspected compromise reached the PMA 30 hours after it was detected (policy: 24)."""
    case.edit_yaml("registers/incidents.yaml", lambda d: d["incidents"][1].update(pma_notified_at=_at(-40, 30)))
    return [("INC-2026-011", "late")]


def _overdue_on_the_calendar(case: Case) -> Expected:
    """Eight days on, no newer CRL has been published since the first (its nextUpdate a week after it), and frank's
    training ran out the day before."""
    case.edit_yaml("people.yaml", lambda d: d["people"]["frank"].update(training_expires=_day(7)))
    case.as_of = AS_OF + timedelta(days=8)
    return [(f"crl {ISSUING}", "crl-next-update"), ("person frank", "training-expiry")]


def _approval_missing(case: Case) -> Expected:
    """The journal holds only one of the two approvals of the issuing CA ceremony's file."""
    sha = read_entries(case.transcript("issuing-ca-2026-12"))[0]["file_sha256"]

    _rewrite(case.root / "journal.jsonl", _keeping(lambda e: not (e.get("sha256") == sha and e.get("by") == "victor")))
    return [("ceremony issuing-ca-2026-12", "unapproved")]


def _transcript_tampered(case: Case) -> Expected:
    """A step of the root ceremony names another actor than the one the chain recorded."""
    path = case.transcript("root-ca-2026-12")
    _rewrite(path, lambda entries: _step(entries, "key.generate").update(actors=["alice"]), rechain=False)
    return [("ceremony root-ca-2026-12", "broken")]


def _attestation_missing(case: Case) -> Expected:
    """The witness's attestation of the root ceremony is gone (the attestation log rechained without it)."""
    path = attestations_path(case.transcript("root-ca-2026-12"))
    _rewrite(path, _keeping(lambda e: e["person"] != "wendy"))
    return [("ceremony root-ca-2026-12", "missing")]


def _no_witness(case: Case) -> Expected:
    """The root ceremony's transcript seats no witness."""
    _rewrite(case.transcript("root-ca-2026-12"), lambda e: e[0]["ceremony"]["participants"].update(witnesses=[]))
    return [("ceremony root-ca-2026-12", "too-few")]


def _one_share(case: Case) -> Expected:
    """The root ceremony's token was activated with one custodian's share of a 2-of-3 PIN."""
    path = case.transcript("root-ca-2026-12")
    _rewrite(path, lambda entries: _step(entries, "token.activate")["details"]["shares_presented"].pop("dave"))
    return [("ceremony root-ca-2026-12", "short:token.activate")]


def _one_person_two_ids(case: Case) -> Expected:
    """The register shows grace is frank under a second id: one person held two shares of two 3-of-5 splits."""

    def same(data: dict[str, Any]) -> None:
        frank = data["people"]["frank"]
        data["people"]["grace"].update(name=frank["name"], organisation=frank["organisation"])

    case.edit_yaml("people.yaml", same)
    return [
        ("ceremony key-backup-2026-12", "two-shares:ca-s1sp-root.kek"),
        ("ceremony key-restore-2026-12", "two-shares:s1sp-restore-token.user-pin"),
    ]


def _deviation_unacknowledged(case: Case) -> Expected:
    """A deviation of the root ceremony is acknowledged by someone who had no seat in it."""

    def change(entries: list[dict[str, Any]]) -> None:
        next(e for e in entries if e["event"] == "deviation").update(acknowledged_by=["victor"])

    _rewrite(case.transcript("root-ca-2026-12"), change)
    return [("ceremony root-ca-2026-12", "deviation:2")]


def _no_recording(case: Case) -> Expected:
    """The root ceremony's transcript names no recording."""
    _rewrite(case.transcript("root-ca-2026-12"), lambda e: e[0]["ceremony"].update(recording={}))
    return [("ceremony root-ca-2026-12", "no-recording")]


def _ca_certificate_swapped(case: Case) -> Expected:
    """The inventory's certificate for the issuing CA is not the one its ceremony issued."""
    serial = case.ws.inventory.ca(ISSUING).serial
    case.sql("UPDATE certificates SET fingerprint = ? WHERE issuer_ca = ? AND serial = ?", ("f" * 64, ROOT, serial))
    return [(f"CA {ISSUING}", "differs")]


def _token_below_level(case: Case) -> Expected:
    """The HSM inventory says what the token really is: SoftHSM2, with no FIPS validation."""
    case.edit_yaml("registers/hsms.yaml", lambda d: d["hsms"][0].update(model="SoftHSM2", fips_level=0))
    return [(f"token {TOKEN}", "fips-level")]


def _root_key_left_extractable(case: Case) -> None:
    """The root key on the CA token as if no restore test had ever cleared its EXTRACTABLE: generated afresh, for
    backup, under the same label (and so the same ID)."""
    # _copy leaves out every *.lock, SoftHSM2's object lock files too; destroying an object needs its own.
    for path in (case.root / "token").rglob("*.object"):
        path.with_suffix(".lock").touch()
    store = case.ws.key_store
    store.destroy("ca-s1sp-root")
    store.generate("ca-s1sp-root", "ec-p256", extractable=True)


def _extractable_after_restore(case: Case) -> Expected:
    """The root key is still EXTRACTABLE though its backup's restore test is on record."""
    _root_key_left_extractable(case)
    return [(f"CA {ROOT}", "extractable-after-restore")]


def _extractable_too_long(case: Case) -> Expected:
    """The restore ceremony stopped after the unwrap (no proof, no export forbidden), the root key is still
    EXTRACTABLE, and the workspace is assessed 31 days after the key was generated (policy: at most 30)."""

    def stop_before_the_proof(entries: list[dict[str, Any]]) -> None:
        del entries[next(i for i, e in enumerate(entries) if e.get("step") == "key.prove") :]

    _rewrite(case.transcript("key-restore-2026-12"), stop_before_the_proof, rechain=False)
    _root_key_left_extractable(case)
    case.as_of = CEREMONIES_AT + timedelta(days=31)
    return [(f"CA {ROOT}", "extractable-too-long")]


def _root_arl_outside_ceremony(case: Case) -> Expected:
    """The root CA signs an ARL after its ceremonies are over."""
    publish_crl(case.ws, ROOT, by="bob")
    return [(f"arl {ROOT} #1", "outside")]


def _unknown_token_key(case: Case) -> Expected:
    """A private key appears on the CA token that the key inventory does not know."""
    case.ws.key_store.generate("ca-rogue", "ec-p256")
    return [(f"key {TOKEN}/ca-rogue", "unknown-object")]


def _backup_unsealed(case: Case) -> Expected:
    """The root key's backup ceremony stopped before its seal: no backup is on record."""
    _unseal(case.transcript("key-backup-2026-12"))
    return [(f"CA {ROOT}", "no-backup")]


def _token_init_unsealed(case: Case) -> Expected:
    """The token-initialisation ceremony stopped before its seal, yet five ceremonies activated the token (the
    restore test among them, to make the root key non-extractable)."""
    _unseal(case.transcript("token-init-2026-12"))
    return [(f"token {TOKEN}", "uninitialised")] * 5


def _component_missing(case: Case) -> Expected:
    """One of the two components of a device master key is not in the custody records."""
    case.sql("DELETE FROM key_custody WHERE key_label = 's1sp-dmk-2' AND component = 2")
    return [("key s1sp-dmk-2", "components")]


def _rotation_overdue(case: Case) -> Expected:
    """The same workspace assessed a day after the device master keys were due for rotation (300 days)."""
    due = case.ws.inventory._execute("SELECT MAX(rotation_due) FROM symmetric_keys WHERE label LIKE 's1sp-dmk-%'")
    case.as_of = parse_time(due.fetchone()[0]) + timedelta(days=1)
    return [("key s1sp-dmk-1", "rotation-due"), ("key s1sp-dmk-2", "rotation-due")]


def _destruction_unsealed(case: Case) -> Expected:
    """The destruction ceremony stopped before its seal: the key was destroyed outside a sealed ceremony."""
    _unseal(case.transcript("key-destruction-2026-12"))
    return [("key s1sp-restore-token/ca-s1sp-root", "unwitnessed")]


def _recorded_under_another_profile(case: Case) -> Expected:
    """A device certificate is on record as an organisation certificate, whose profile it does not meet."""
    serial = case.serial("ss1sp-device", "ka")
    case.sql("UPDATE certificates SET profile = 'ss1sp-organisation' WHERE serial = ?", (serial,))
    return [(_certificate(serial), "lint")]


def _wrong_aki(case: Case) -> Expected:
    """A certificate on record whose AKI is not its issuer's SKI."""
    serial = case.add_certificate(case.serial("ss1sp-organisation", "ds"), aki="00" * 8)
    return [(_certificate(serial), "aki")]


def _short_serial(case: Case) -> Expected:
    """A certificate on record whose serial has only 8 non-zero octets (63 random bits; policy: 64)."""
    serial = case.add_certificate(case.serial("ss1sp-organisation", "ka"), serial="0" * 16 + "5EC0DE5EC0DE5EC0")
    return [(_certificate(serial), "entropy")]


def _outlives_issuer(case: Case) -> Expected:
    """An organisation certificate on record that ends after its issuing CA does."""
    serial = case.add_certificate(case.serial("ss1sp-organisation", "ds"), not_after="2060-01-01T00:00:00+00:00")
    return [(_certificate(serial), "outlives-issuer")]


def _foreign_policy_oid(case: Case) -> Expected:
    """A certificate on record with a policy OID its profile does not name."""
    serial = case.add_certificate(case.serial("ss1sp-organisation", "ka"), policy_oids="1.2.3.4")
    return [(_certificate(serial), "policy-oid")]


def _two_valid_for_one_identity(case: Case) -> Expected:
    """The device's DS is re-keyed, and the inventory shows the revoked old certificate valid again."""
    old = case.serial("ss1sp-device", "ds", status="revoked")
    new = _issue(case.ws, "ss1sp-device", Identity(eui64=DEVICE_EUI64, usage="ds"))
    case.sql("UPDATE certificates SET status = 'valid' WHERE serial = ?", (old,))
    return [(_certificate(old), "duplicate"), (_certificate(new), "duplicate")]


def _one_key_two_usages(case: Case) -> Expected:
    """A new device's DS and KA certificates certify the same public key (issuance accepts it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = _csr(Identity(), "ss1sp-device", key)
    identities = [Identity(eui64="00DB123456780002", usage=usage) for usage in ("ds", "ka")]
    serials = [_issue(case.ws, "ss1sp-device", identity, csr=csr) for identity in identities]
    return [(_certificate(s), "reuse") for s in serials]


def _approved_by_custodian(case: Case) -> Expected:
    """A certificate on record as approved by a key custodian, who may not approve issuance (issue refuses such
    an approval at the desk since issue K: the row is edited, as a hand edit or an older record could say)."""
    serial = _issue(case.ws, "ss1sp-device", Identity(eui64="00DB123456780003", usage="ds"))
    case.sql("UPDATE certificates SET approved_by = 'carol' WHERE serial = ?", (serial,))
    return [(_certificate(serial), "approver")]


def _signature_broken(case: Case) -> Expected:
    """A certificate's bytes on record no longer verify under its issuer (one signature octet changed)."""
    serial = case.serial("ss1sp-organisation", "ka")
    query = "SELECT der FROM certificates WHERE serial = ?"
    der = bytearray(case.ws.inventory._execute(query, (serial,)).fetchone()[0])
    der[-1] ^= 0x01
    case.sql("UPDATE certificates SET der = ? WHERE serial = ?", (bytes(der), serial))
    return [(_certificate(serial), "signature")]


def _crl_stale(case: Case) -> Expected:
    """The same workspace assessed an hour after its only CRL's nextUpdate: no newer CRL was published."""
    next_update = case.ws.inventory._execute("SELECT next_update FROM crls WHERE issuer_ca = ?", (ISSUING,))
    case.as_of = parse_time(next_update.fetchone()[0]) + timedelta(hours=1)
    return [(f"crl {ISSUING}", "stale")]


def _crl_file_changed(case: Case) -> Expected:
    """The published CRL file has one signature octet changed since it was recorded."""
    path = case.root / "artifacts" / "crls" / f"{ISSUING}-1.crl"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    _write(path, bytes(data))
    return [(f"crl {ISSUING} #1", "hash"), (f"crl {ISSUING} #1", "signature")]


def _revoked_without_crl(case: Case) -> Expected:
    """A certificate is revoked and no CRL is published after it within the publication window."""
    serial = case.serial("ss1sp-organisation", "ka")
    (done,) = revoke(
        case.ws, ca_name=ISSUING, reason="superseded", requested_by="bob", approved_by="alice", serial=serial
    )
    case.as_of = DEFECTS_AT + timedelta(hours=load_policy().compliance.revocation_publication_hours + 1)
    return [(_certificate(done.serial), "unpublished")]


def _crl_lists_a_valid_certificate(case: Case) -> Expected:
    """The inventory lost the revocation the CRL publishes (rolled back to a copy from before it): the CRL lists
    a serial the CA, by its inventory, never revoked."""
    serial = case.serial("ss1sp-device", "ds", status="revoked")
    case.sql("DELETE FROM revocations WHERE issuer_ca = ? AND serial = ?", (ISSUING, serial))
    case.sql("UPDATE certificates SET status = 'valid' WHERE issuer_ca = ? AND serial = ?", (ISSUING, serial))
    return [(f"crl {ISSUING} #1", f"serial:{serial}")]


def _journal_tampered(case: Case) -> Expected:
    """A journal entry says another approver than the one the chain recorded."""

    def change(entries: list[dict[str, Any]]) -> None:
        next(e for e in entries if e["event"] == "certificate.issue").update(approved_by="alice")

    _rewrite(case.root / "journal.jsonl", change, rechain=False)
    return [("journal", "chain")]


def _transcript_deleted(case: Case) -> Expected:
    """The backup ceremony's transcript is on record in the inventory, but the file is gone."""
    case.transcript("key-backup-2026-12").unlink()
    return [("ceremony key-backup-2026-12", "missing")]


def _training_lapsed(case: Case) -> Expected:
    """frank's training ran out on 2026-12-01: the ceremonies dated after it seated him untrained."""
    case.edit_yaml("people.yaml", lambda d: d["people"]["frank"].update(training_expires="2026-12-01"))
    return [("ceremony key-restore-2026-12", "training:frank"), ("ceremony key-destruction-2026-12", "training:frank")]


def _leaver_holds_a_share(case: Case) -> Expected:
    """frank left on 2026-12-01 and still holds shares of the backup key's split and of the restore token's PIN
    (no custodian change since)."""
    case.edit_yaml("people.yaml", lambda d: d["people"]["frank"].update(left="2026-12-01"))
    return [
        ("split ca-s1sp-root.kek", "leaver-holds-share"),
        ("split s1sp-restore-token.user-pin", "leaver-holds-share"),
    ]


def _revocation_self_approved(case: Case) -> Expected:
    """A revocation on record that bob requested and approved himself (revoke refuses one at the desk since issue
    K: the row is edited, as a hand edit or an older record could say)."""
    serial = case.serial("ss1sp-organisation", "ka")
    (done,) = revoke(
        case.ws, ca_name=ISSUING, reason="superseded", requested_by="bob", approved_by="alice", serial=serial
    )
    case.sql("UPDATE revocations SET approved_by = requested_by WHERE issuer_ca = ? AND serial = ?", (ISSUING, serial))
    return [(f"revocation {done.serial}", "self-approved")]


# --- CER-10: attestations made with the participants' own keys ---------------------------------
OWN_TOKEN_PIN = "own-token-pin-4417"  # test-only


def _reattest(root: Path, key_of: Callable[[str], Any]) -> None:
    """Every participant attests every transcript afresh (the old attestation logs are gone)."""
    register = load_register(root / "people.yaml")
    for transcript in _transcripts(root):
        attestations_path(transcript).unlink(missing_ok=True)
        for pid in participants(read_entries(transcript)[0]):
            sign_transcript(transcript, pid, key_of(pid), register)


def _attest_with_own_tokens(root: Path) -> None:
    """The golden build attests with the workspace's file keys (demo_register). Here each person enrols a
    SoftHSM2 token of their own (each under its own configuration, initialised in a process of its own; the
    token keys then sign from processes of their own), and every transcript is re-attested with them."""
    module = find_softhsm_module()
    if module is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    keys = {}
    for pid in yaml.safe_load((root / "people.yaml").read_text(encoding="utf-8"))["people"]:
        where = root.parent / "own-tokens" / pid
        in_child(init_softhsm_token, where / "tokens", where / "softhsm2.conf", f"{pid}-card", SO_PIN, OWN_TOKEN_PIN)
        ref = token_ref(f"{pid}-card", module, where / "softhsm2.conf")
        enrol_person(root / "people.yaml", pid, ref, OWN_TOKEN_PIN, now=DEFECTS_AT)
        keys[pid] = TokenKey.open(ref, OWN_TOKEN_PIN)
    _reattest(root, keys.__getitem__)


def _attested_with_the_workspaces_key_files(case: Case) -> Expected:
    """An insider holding the workspace attests as everyone with its key files (secrets/attestation/): the
    register is pointed back at them and every transcript re-attested; the root ceremony's log, rewritten and
    rechained, even claims each key was on a token."""
    keys = {path.stem: load_file_key(path) for path in (case.root / "secrets" / "attestation").glob("*.key")}

    def point_back(data: dict[str, Any]) -> None:
        for pid, key in keys.items():
            data["people"][pid].update(attestation_key=key_fingerprint(key.public_key()), attestation_token=None)

    def claim_tokens(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            entry.update(key_kind="token", key_origin=f"{entry['person']}-card")

    case.edit_yaml("people.yaml", point_back)
    _reattest(case.root, keys.__getitem__)
    _rewrite(attestations_path(case.transcript("root-ca-2026-12")), claim_tokens)
    return [(f"ceremony {read_entries(t)[0]['ceremony_id']}", "file-keys") for t in _transcripts(case.root)]


# --- CER-11: failed ceremonies abandoned on record --------------------------------------------------
def _ceremony_abandoned(case: Case) -> Expected:
    """A second root ceremony fails after its key was generated (its certificate's file is found already
    written) and is abandoned under two witnesses: a recorded deviation, with its reason and witnesses."""
    from ceremony import procedures
    from ceremony.errors import StateError
    from ceremony.procedures.abandonment import abandon
    from ceremony.procedures.consoles import Unattended
    from tests.support.ceremony_files import approve, variant

    change = {"ceremony_id": "root-ca-2026-12-x", "ca": "s1sp-root-x", "key.label": "ca-s1sp-root-x", "outputs": {}}
    path = variant(case.root.parent / "files", "root-ca.yaml", change)
    approve(case.root, path)
    run = procedures.begin(path, case.root)
    try:
        run.step("activate")
        run.step("generate-key")
        (case.root / "artifacts" / "cas" / "s1sp-root-x.pem").write_text("in the way\n")
        with pytest.raises(StateError):
            run.step("issue-certificate")
    finally:
        run.ws.close()
    ws = Workspace.open(case.root)  # on the ceremony's clock (the suite's), which has moved on from DEFECTS_AT
    try:
        abandon(ws, "root-ca-2026-12-x", witnesses=["wendy", "victor"], reason="the certificate file was in the way",
                console=Unattended(ws), register=load_register(case.root / "people.yaml"))  # fmt: skip
    finally:
        ws.close()
    return [("ceremony root-ca-2026-12-x", "abandoned")]


# --- the golden table ---------------------------------------------------------------------------
def _nothing_at_rest(root: Path) -> None:
    """What a live workspace holds of its secrets: nothing. The golden workspace's unattended runs left their
    shares deposited and their cards unprinted; here they are gone (the custodians carry them on paper)."""
    shutil.rmtree(root / "secrets" / "shares", ignore_errors=True)
    for card in (root / "share-cards").iterdir():
        card.unlink()


def _quorum_left_at_rest(case: Case) -> Expected:
    """A PIN file and two of the three user-PIN shares (two rebuild it) left in the workspace."""
    shares = case.root / "secrets" / "shares" / f"{TOKEN}.user-pin"
    shares.mkdir(parents=True)
    for path in (case.root / "secrets" / "token.pin", shares / "carol.share", shares / "dave.share"):
        path.write_text("left here\n")
        path.chmod(0o600)
    return [("secrets/token.pin", "pin-at-rest"), (f"{TOKEN}.user-pin", "quorum-at-rest")]


def _mark_removed(case: Case) -> Expected:
    """The test workspace's mark is edited to say live: its unattended ceremonies betray it too."""
    config = case.root / "workspace.yaml"
    config.write_text(config.read_text().replace("purpose: test", "purpose: live"))
    ids = [str(read_entries(t)[0]["ceremony_id"]) for t in _transcripts(case.root)]
    return [("workspace.yaml", "mark-changed")] + [(i, "trial-evidence") for i in ids]


def _register_changed_unrecorded(case: Case) -> Expected:
    """The HSM register is edited after its record: nobody put the change on record."""
    case.edit_yaml("registers/hsms.yaml", lambda d: d["hsms"][0].update(firmware="9.9.9"))
    return [("registers/hsms.yaml", "changed")]


def _journal_rechained(case: Case) -> Expected:
    """An issuance's approver edited in the journal and the chain recomputed: every checkpoint signed after
    that entry names a head the journal no longer has."""

    def change(entries: list[dict[str, Any]]) -> None:
        next(e for e in entries if e["event"] == "certificate.issue").update(approved_by="alice")

    _rewrite(case.root / "journal.jsonl", change)
    entries = read_entries(case.root / "journal.jsonl")
    edited = next(e["seq"] for e in entries if e["event"] == "certificate.issue")
    after = [e for e in entries if e["event"] == "journal.checkpoint" and e["entries"] >= edited]
    return [(f"checkpoint {e['checkpoint']}", "rewritten") for e in after]


def _certificate_file_swapped(case: Case) -> Expected:
    """One organisation certificate's file holds the other's certificate."""
    ds, ka = case.serial("ss1sp-organisation", "ds"), case.serial("ss1sp-organisation", "ka")
    path = lambda serial: case.root / "artifacts" / "certificates" / ISSUING / f"{serial}.pem"  # noqa: E731
    _write(path(ds), path(ka).read_bytes())
    return [(f"certificate {ISSUING} {ds}", "artifact")]


def _issued_backdated(case: Case) -> Expected:
    """A certificate's issued_at moved a year back in SQL: before its notBefore and its journal entry."""
    serial = case.serial("ss1sp-organisation", "ds")
    earlier = (AS_OF - timedelta(days=365)).isoformat()
    case.sql("UPDATE certificates SET issued_at = ? WHERE issuer_ca = ? AND serial = ?", (earlier, ISSUING, serial))
    subject = f"certificate {ISSUING} {serial}"
    return [(subject, "issued-before-validity"), (subject, "issued-at")]


#: REV-05: the issuing CA's key compromise, the incident the example ca-revocation ceremony answers.
COMPROMISE = "INC-2026-012"


def _compromise_on_record(root: Path, detected: datetime, notified: datetime | None) -> None:
    """The incident register names the issuing CA's key compromise, detected and (unless None) notified then."""
    path = root / "registers" / "incidents.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["incidents"] = [i for i in data["incidents"] if i["id"] != COMPROMISE] + [
        {"id": COMPROMISE, "kind": "key-compromise", "summary": "the issuing CA's token found outside the safe",
         "detected_at": detected.isoformat(), "ca": ISSUING}
        | ({"pma_notified_at": notified.isoformat()} if notified else {})
    ]  # fmt: skip
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _ca_compromise_answered(root: Path) -> None:
    """REV-05's passing workspace: the issuing CA's key compromise detected two hours before the ca-revocation
    ceremony (data/ceremonies/ca-revocation.yaml) revokes its certificate and signs the root's ARL in the ceremony;
    the PMA notified an hour after detection."""
    _compromise_on_record(root, DEFECTS_AT - timedelta(hours=2), DEFECTS_AT - timedelta(hours=1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(clock.PIN_VARIABLE, clock.pin(DEFECTS_AT).to_environment())
        run(root, CEREMONIES / "ca-revocation.yaml")


def _compromise_revoked_late(case: Case) -> Expected:
    """The compromise was detected 30 hours before the revocation (policy: 24); the PMA heard within the hour."""
    detected = DEFECTS_AT - timedelta(hours=30)
    _compromise_on_record(case.root, detected, detected + timedelta(hours=1))
    return [(COMPROMISE, "revocation-late")]


@dataclass(frozen=True)
class Golden:
    """A control's golden pair: what its check examines on the clean workspace (the pass finding's message),
    and the defect that makes it fail (which returns the failures it must produce)."""

    examined: str
    defect: Callable[[Case], Expected]
    store: Store = "software"
    #: What the passing workspace needs beyond the golden one (the failing case starts from it too).
    prepare: Callable[[Path], None] | None = None


GOLDEN: dict[str, Golden] = {
    "GOV-01": Golden("2 documents in force", _cps_unapproved),
    "GOV-02": Golden("2 assessments; independence beyond the register needs the PMA's judgement", _stage_2_missing),
    "GOV-03": Golden("every assessment finding's status and due date", _finding_overdue),
    "GOV-04": Golden("1 compromise incidents", _compromise_notified_late),
    "GOV-07": Golden("17 dates on the calendar to 2027-12-01, 1 due soon", _overdue_on_the_calendar),
    "CER-01": Golden("7 ceremonies' file approvals in the journal", _approval_missing),
    "CER-02": Golden("7 transcripts: chain, seal and recorded hash", _transcript_tampered),
    "CER-03": Golden("attestations of 7 transcripts", _attestation_missing),
    "CER-04": Golden("7 ceremonies' witnesses", _no_witness),
    "CER-05": Golden("7 activations and rebuilds against their m-of-n", _one_share),
    "CER-06": Golden("3 splits and 2 component sets", _one_person_two_ids),
    "CER-07": Golden("10 deviations", _deviation_unacknowledged),
    "CER-08": Golden("7 ceremonies' recordings", _no_recording, prepare=_hash_recordings),
    "CER-09": Golden("CA ceremonies' certificates against their naming documents", _ca_certificate_swapped),
    "KEY-01": Golden(
        "2 CA keys and 1 token(s); EXTRACTABLE only until the restore test, at most 30 days",
        _token_below_level,
        store="pkcs11",
    ),
    "KEY-02": Golden("2 certificates and 0 CRLs signed by root CAs", _root_arl_outside_ceremony),
    "KEY-03": Golden("2 CAs, 4 active key pairs, 3 token objects", _unknown_token_key, store="pkcs11"),
    "KEY-04": Golden("1 backed-up keys, 1 restored copies", _backup_unsealed, store="pkcs11"),
    "KEY-05": Golden("6 token activations, component bags", _token_init_unsealed),
    "KEY-06": Golden("2 keys built from components", _component_missing),
    "KEY-07": Golden("3 active symmetric keys", _rotation_overdue),
    "KEY-08": Golden("1 destructions", _destruction_unsealed),
    "CRT-01": Golden("6 certificates linted against their profiles", _recorded_under_another_profile),
    "CRT-02": Golden("6 certificates' key identifiers", _wrong_aki),
    "CRT-03": Golden("6 serials: unique, 16 octets, >= 64 random bits, no sequential runs", _short_serial),
    "CRT-04": Golden("6 validity periods (device certificates carry the GBCS sentinel)", _outlives_issuer),
    "CRT-05": Golden("6 certificates' policy OIDs for 4 profiles", _foreign_policy_oid),
    "CRT-06": Golden("4 identities", _two_valid_for_one_identity),
    "CRT-07": Golden("6 public keys", _one_key_two_usages),
    "CRT-08": Golden("6 certificates against 6 logged issuances and 0 batches", _approved_by_custodian),
    "CRT-09": Golden("6 signatures verified under their issuers, in worker processes", _signature_broken),
    "REV-01": Golden("1 CRLs/ARLs", _crl_stale),
    "REV-02": Golden("1 CRL files", _crl_file_changed),
    "REV-03": Golden("1 revocations against 1 CRLs", _revoked_without_crl),
    "REV-04": Golden("1 CRL entries", _crl_lists_a_valid_certificate),
    "REV-05": Golden(
        "1 CA compromises: revoked within 24 h of detection, on the issuer's ARL within 24 h, the PMA notified within "
        "24 h",
        _compromise_revoked_late,
        prepare=_ca_compromise_answered,
    ),
    "LOG-01": Golden("38 journal entries", _journal_tampered),
    "LOG-02": Golden(
        "records reach back to the workspace's creation 2026-12-01 (0 days; retention 7 years)", _transcript_deleted
    ),
    "PER-01": Golden("48 seats at 7 ceremonies", _training_lapsed),
    "PER-02": Golden("revocations, ceremony seats and approvals", _revocation_self_approved),
    "GOV-05": Golden("marked 'test' at init; 7 ceremonies' runs", _mark_removed),
    "GOV-06": Golden("5 registers against 5 records in the journal", _register_changed_unrecorded),
    "LOG-03": Golden("8 signed checkpoints; the journals of 0 earlier evidence packs", _journal_rechained),
    "LOG-04": Golden(
        "6 certificates, 0 batches, 1 CRLs and 2 CAs against 38 journal entries, the artifact files and the token",
        _certificate_file_swapped,
    ),
    "LOG-05": Golden(
        "issuance, revocation and CRL times against 38 journal entries and the CRL files", _issued_backdated
    ),
    "KEY-09": Golden(
        "secrets/ and share-cards/ against 3 splits and 2 component sets",
        _quorum_left_at_rest,
        prepare=_nothing_at_rest,
    ),  # fmt: skip
    "CER-11": Golden("7 ceremonies, none abandoned", _ceremony_abandoned),
    "KEY-10": Golden("the holders of 3 current splits; the cards of 0 replaced splits", _leaver_holds_a_share),
    "CER-10": Golden(
        "48 attestations of 7 transcripts, 48 with the participants' own tokens",
        _attested_with_the_workspaces_key_files,
        prepare=_attest_with_own_tokens,
    ),
}


def _cases() -> list[Any]:
    return [
        pytest.param(cid, id=cid, marks=[pytest.mark.hsm] if g.store == "pkcs11" else []) for cid, g in GOLDEN.items()
    ]


def _prepared(control: str, source: Path, tmp_path: Path) -> Path:
    """The control's passing workspace: the golden one itself (read only), or a prepared copy."""
    golden = GOLDEN[control]
    if golden.prepare is None:
        return source
    root = _copy(source, tmp_path / "ws")
    golden.prepare(root)
    return root


def _passing_findings(control: str, source: Path, tmp_path: Path) -> list[ControlFinding]:
    return _assess(_prepared(control, source, tmp_path), control, AS_OF)


def _failing_findings(control: str, source: Path, tmp_path: Path) -> tuple[list[ControlFinding], Expected]:
    passing = _prepared(control, source, tmp_path)
    root = passing if passing.is_relative_to(tmp_path) else _copy(passing, tmp_path / "ws")
    case = Case(root)
    try:
        expected = GOLDEN[control].defect(case)
    finally:
        case.close()
    return _assess(root, control, case.as_of), expected


def _run(control: str, request: pytest.FixtureRequest, work: Callable[..., T], tmp_path: Path) -> T:
    """``work`` on the control's golden workspace. A copy of a SoftHSM2 workspace is another token
    configuration than the golden one this process opened, so its work runs in a process of its own."""
    store = GOLDEN[control].store
    source: Path = request.getfixturevalue(f"golden_{store}")
    if store == "pkcs11" and (GOLDEN[control].prepare is not None or work is _failing_findings):
        return in_child(work, control, source, tmp_path)
    return work(control, source, tmp_path)


# --- the tests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("control", _cases())
def test_control_passes(control: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    findings = _run(control, request, _passing_findings, tmp_path)
    assert [(f.outcome, f.subject, f.code, f.message) for f in findings] == [
        ("pass", "", "pass", GOLDEN[control].examined)
    ], [f.to_json() for f in findings]


@pytest.mark.parametrize("control", _cases())
def test_control_fails(control: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    findings, expected = _run(control, request, _failing_findings, tmp_path)
    assert expected
    assert sorted((f.outcome, f.subject, f.code) for f in findings) == sorted(("fail", *e) for e in expected), [
        f.to_json() for f in findings
    ]


def _parametrised(test: Callable[..., None]) -> set[str]:
    (mark,) = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
    return {str(getattr(p, "values", (p,))[0]) for p in mark.args[1]}


def test_every_control_in_the_catalogue_has_a_passing_and_a_failing_golden_case() -> None:
    catalogue = set(CATALOGUE)
    assert (
        len(catalogue) == 49
    )  # + GOV-05, KEY-09 (issue I), + CER-10 (participants' own keys), + GOV-06, LOG-03..05 (J), + CER-11 (K),
    # + GOV-07, KEY-10, REV-05 (CA compromise answered on time)
    assert _parametrised(test_control_passes) == catalogue
    assert _parametrised(test_control_fails) == catalogue


#: KEY-01's defects beyond its golden one: a CA key left EXTRACTABLE.
def _export_forbidden_on_another_object(case: Case) -> Expected:
    """The restore ceremony's record says export was forbidden on an object whose ID is not the root key's (a
    re-chained edit, or a step run on another object): KEY-01 does not take the record's word for it."""

    def elsewhere(entries: list[dict[str, Any]]) -> None:
        _step(entries, "key.forbid_export")["details"]["attributes"]["ID"] = "00" * 16

    _rewrite(case.transcript("key-restore-2026-12"), elsewhere)
    return [(f"CA {ROOT}", "export-forbidden-elsewhere")]


KEY_01_EXTRACTABLE = {
    "after-restore": _extractable_after_restore,
    "too-long": _extractable_too_long,
    "forbidden-elsewhere": _export_forbidden_on_another_object,
}


def _key_01_failing(defect: Callable[[Case], Expected], source: Path, tmp_path: Path) -> Any:
    root = _copy(source, tmp_path / "ws")
    case = Case(root)
    try:
        expected = defect(case)
    finally:
        case.close()
    return _assess(root, "KEY-01", case.as_of), expected


@pytest.mark.hsm
@pytest.mark.parametrize("defect", list(KEY_01_EXTRACTABLE))
def test_key_01_fails_on_a_ca_key_left_extractable(defect: str, golden_pkcs11: Path, tmp_path: Path) -> None:
    # A copy of the SoftHSM2 workspace is another token configuration: its work runs in a process of its own.
    findings, expected = in_child(_key_01_failing, KEY_01_EXTRACTABLE[defect], golden_pkcs11, tmp_path)
    assert sorted((f.outcome, f.subject, f.code) for f in findings) == sorted(("fail", *e) for e in expected), [
        f.to_json() for f in findings
    ]


def test_a_certificate_row_changed_in_place_is_assessed_as_changed(golden_software: Path, tmp_path: Path) -> None:
    """The assessment reads the database, not the columnar snapshot a writer could leave stale."""
    root = _copy(golden_software, tmp_path / "ws")
    case = Case(root)
    try:
        case.sql(
            "UPDATE certificates SET aki = ? WHERE serial = ?", ("00" * 8, case.serial("ss1sp-organisation", "ds"))
        )
    finally:
        case.close()
    assert [(f.outcome, f.code) for f in _assess(root, "CRT-02", AS_OF)] == [("fail", "aki")]


def test_a_forged_live_mark_is_still_a_finding(
    golden_software: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An insider rewrites both marks, workspace.yaml and the journal's init entry (re-chained), to pass a test
    workspace off as live: GOV-05 still fails every ceremony its unattended, trial runs left on record."""
    monkeypatch.delenv(clock.PIN_VARIABLE)  # it now passes for live, which keeps the system clock
    root = _copy(golden_software, tmp_path / "ws")
    config = root / "workspace.yaml"
    config.write_text(config.read_text().replace("purpose: test", "purpose: live"))
    _rewrite(root / "journal.jsonl", lambda entries: entries[0].update(purpose="live"))
    ids = sorted(str(read_entries(t)[0]["ceremony_id"]) for t in _transcripts(root))
    findings = _assess(root, "GOV-05", AS_OF)
    assert sorted((f.outcome, f.subject, f.code) for f in findings) == [("fail", i, "trial-evidence") for i in ids]
    assert all("was run unattended and was run in a test workspace" in f.message for f in findings)


def _recorded(case: Case, by: str, reason: str) -> None:
    record_registers(case.ws, by=by, reason=reason)


def test_a_waiver_needs_a_second_person_and_nobody_acts_before_the_register_lists_them(
    golden_software: Path, tmp_path: Path
) -> None:
    """GOV-06 beyond its golden case: a waiver recorded by its own approver, or of the approver's own finding;
    a person added to the register (and recorded) after the date they approved an issuance."""
    root = _copy(golden_software, tmp_path / "ws")
    case = Case(root)
    try:
        waivers = {"schema_version": 1, "waivers": [
            {"control": "PER-01", "subject": "person victor", "reason": "training booked for next week",
             "approved_by": "victor", "expires": _day(30)},
            {"control": "KEY-02", "reason": "the ARL was signed in a later, witnessed session", "approved_by": "alice",
             "expires": _day(30)},
        ]}  # fmt: skip
        (root / "registers" / "waivers.yaml").write_text(yaml.safe_dump(waivers, sort_keys=False), encoding="utf-8")

        def add_mallory(d: Any) -> None:
            d["people"]["mallory"] = dict(d["people"]["alice"], name="Mallory M")

        case.edit_yaml("people.yaml", add_mallory)
        _recorded(case, "alice", "waivers, and mallory joins")
        case.sql("UPDATE certificates SET approved_by = 'mallory' WHERE serial = ?",
                 (case.serial("ss1sp-organisation", "ds"),))  # fmt: skip

        def approved_by_mallory(entries: list[dict[str, Any]]) -> None:
            next(e for e in entries if e["event"] == "certificate.issue").update(approved_by="mallory")

        _rewrite(root / "journal.jsonl", approved_by_mallory)
    finally:
        case.close()
    findings = _assess(root, "GOV-06", AS_OF)
    assert sorted((f.subject, f.code) for f in findings) == [
        ("person mallory", "listed-late"),
        ("waiver of KEY-02", "waiver-self"),
        ("waiver of PER-01 (person victor)", "waiver-self"),
    ], [f.to_json() for f in findings]


def test_rev01_holds_on_fifty_crls_and_finds_the_one_that_came_late(golden_software: Path, tmp_path: Path) -> None:
    """The routine weekly CRL, 49 times over (issue K: the second CRL once crashed REV-01), then one published
    after its predecessor's nextUpdate."""
    root = _copy(golden_software, tmp_path / "ws")
    for minutes in range(1, 50):
        ws = Workspace.open(root, clock=clock.pin(DEFECTS_AT + timedelta(minutes=minutes)))
        try:
            publish_crl(ws, ISSUING, by="bob")
        finally:
            ws.close()
    assert [(f.outcome, f.message) for f in _assess(root, "REV-01", AS_OF)] == [("pass", "50 CRLs/ARLs")]
    late = DEFECTS_AT + timedelta(days=30)
    ws = Workspace.open(root, clock=clock.pin(late))
    try:
        publish_crl(ws, ISSUING, by="bob")
    finally:
        ws.close()
    findings = _assess(root, "REV-01", late + timedelta(hours=1))
    assert [(f.outcome, f.subject, f.code) for f in findings] == [("fail", f"crl {ISSUING}", "gap:50")]


def test_rev03_waits_for_the_publication_window_before_calling_a_revocation_unpublished(
    golden_software: Path, tmp_path: Path
) -> None:
    """A revocation on no CRL yet is a finding only once the policy's publication window has passed."""
    root = _copy(golden_software, tmp_path / "ws")
    case = Case(root)
    try:
        serial = case.serial("ss1sp-device", "ka")
        revoke(case.ws, ca_name=ISSUING, serial=serial, reason="superseded", requested_by="bob", approved_by="alice")
    finally:
        case.close()
    window = timedelta(hours=load_policy().compliance.revocation_publication_hours)
    soon = _assess(root, "REV-03", DEFECTS_AT + timedelta(hours=1))
    assert [(f.outcome, f.message) for f in soon] == [
        ("pass", "2 revocations against 1 CRLs; 1 within their window, on no CRL yet")
    ]
    later = _assess(root, "REV-03", DEFECTS_AT + window + timedelta(hours=1))
    assert [(f.outcome, f.code) for f in later] == [("fail", "unpublished")]


def test_rev03_holds_when_no_revocation_of_the_period_is_on_a_crl_yet(golden_software: Path, tmp_path: Path) -> None:
    """Found by the lifetime simulation: two superseded certificates revoked together, before any CRL lists either,
    crashed REV-03 (an all-missing publication column is not a datetime one) into a FATAL finding."""
    root = _copy(golden_software, tmp_path / "ws")
    case = Case(root)
    try:
        for profile in ("ss1sp-device", "ss1sp-organisation"):
            serial = case.serial(profile, "ka")
            revoke(case.ws, ca_name=ISSUING, serial=serial, reason="superseded", requested_by="bob",
                   approved_by="alice")  # fmt: skip
    finally:
        case.close()
    ws = Workspace.open(root, assessing=True)
    try:
        since = DEFECTS_AT - timedelta(minutes=1)
        findings = run_control(CATALOGUE["REV-03"], Evidence(ws, as_of=DEFECTS_AT + timedelta(hours=1), since=since))
    finally:
        ws.close()
    assert [(f.outcome, f.message) for f in findings] == [
        ("pass", "2 revocations against 1 CRLs; 2 within their window, on no CRL yet")
    ]


def test_a_crl_file_replaced_by_one_that_is_no_crl_is_a_finding_of_each_crl_control_not_a_crash(
    golden_software: Path, tmp_path: Path
) -> None:
    """The CRL controls read each file once, bounded, into what they share (ceremony.compliance.sources.crl_file):
    a file that does not parse is REV-02's "unreadable" (it crashed REV-02 into a FATAL finding before), and the
    others pass over it rather than fail twice."""
    root = _copy(golden_software, tmp_path / "ws")
    _write(root / "artifacts" / "crls" / f"{ISSUING}-1.crl", b"\x30\x03\x02\x01\x00")
    found = {control: _assess(root, control, AS_OF) for control in ("REV-02", "REV-04", "LOG-04", "LOG-05")}
    assert [(f.outcome, f.subject, f.code) for f in found["REV-02"]] == [
        ("fail", f"crl {ISSUING} #1", "hash"),
        ("fail", f"crl {ISSUING} #1", "unreadable"),
    ]
    assert {control: [f.outcome for f in fs] for control, fs in found.items() if control != "REV-02"} == {
        "REV-04": ["pass"],
        "LOG-04": ["pass"],
        "LOG-05": ["pass"],
    }


def test_a_certificate_row_naming_a_file_outside_the_artifacts_is_a_finding_and_the_file_is_not_read(
    golden_software: Path, tmp_path: Path
) -> None:
    """LOG-04 reads only files under artifacts/ (bounded, never through a link); an import's source is not one."""
    root = _copy(golden_software, tmp_path / "ws")
    case = Case(root)
    try:
        like = case.serial("ss1sp-organisation", "ds")
        outside = case.add_certificate(like, artifact="/etc/hostname")
        case.add_certificate(like, artifact="/somewhere/imported.pem", issuer_ca="ext:0123456789ab")
    finally:
        case.close()
    findings = _assess(root, "LOG-04", AS_OF)
    assert [(f.subject, f.code) for f in findings] == [(f"certificate {ISSUING} {outside}", "artifact-outside")]


def _rev05(root: Path, as_of: datetime) -> list[tuple[str, str, str]]:
    return [(f.outcome, f.subject, f.code) for f in _assess(root, "REV-05", as_of)]


def test_rev05_fails_a_ca_compromise_not_revoked_then_its_arl_missing_then_late(
    golden_software: Path, tmp_path: Path
) -> None:
    """REV-05 beyond its golden case: the issuing CA revoked outside a ceremony, and the root's ARL listing it only
    30 hours later (policy: 24). Each deadline counts from the time before it, and waits until it has passed."""
    root = _copy(golden_software, tmp_path / "ws")
    detected = DEFECTS_AT - timedelta(hours=1)
    _compromise_on_record(root, detected, detected + timedelta(minutes=30))
    assert _rev05(root, DEFECTS_AT) == [("pass", "", "pass")]  # detected an hour ago: within its window
    assert _rev05(root, detected + timedelta(hours=25)) == [("fail", COMPROMISE, "not-revoked")]
    case = Case(root)
    try:
        serial = case.ws.inventory.ca(ISSUING).serial
        revoke(case.ws, ca_name=ROOT, serial=serial, reason="keyCompromise", requested_by="bob", approved_by="victor")
    finally:
        case.close()
    assert _rev05(root, DEFECTS_AT + timedelta(hours=2)) == [("pass", "", "pass")]  # the ARL is not due yet
    assert _rev05(root, DEFECTS_AT + timedelta(hours=25)) == [("fail", COMPROMISE, "arl-missing")]
    ws = Workspace.open(root, clock=clock.pin(DEFECTS_AT + timedelta(hours=30)))
    try:
        publish_crl(ws, ROOT, by="bob")
    finally:
        ws.close()
    findings = _assess(root, "REV-05", DEFECTS_AT + timedelta(hours=31))
    assert [(f.outcome, f.subject, f.code) for f in findings] == [("fail", COMPROMISE, "arl-late")]
    assert findings[0].message == f"{ROOT}'s first CRL/ARL listing CA {ISSUING} came 30 h after its revocation (24 h)"


def test_rev05_fails_a_ca_compromise_the_pma_heard_of_late_or_never(golden_software: Path, tmp_path: Path) -> None:
    """On the golden case's workspace (the ceremony answered the compromise on time): the PMA's notification, 30
    hours after detection, is late; none on record is a finding once the policy's 24 hours have passed."""
    root = _prepared("REV-05", golden_software, tmp_path)
    detected = DEFECTS_AT - timedelta(hours=2)
    _compromise_on_record(root, detected, detected + timedelta(hours=30))
    assert _rev05(root, detected + timedelta(hours=31)) == [("fail", COMPROMISE, "pma-late")]
    _compromise_on_record(root, detected, None)
    assert _rev05(root, AS_OF) == [("pass", "", "pass")]
    assert _rev05(root, detected + timedelta(hours=25)) == [("fail", COMPROMISE, "pma-not-notified")]


def test_rev05_reads_a_compromise_the_register_names_no_ca_for_from_the_ceremony_that_answered_it(
    golden_software: Path, tmp_path: Path
) -> None:
    """An incident without ``ca`` (the shipped example register's) is a CA compromise when a sealed ca-revocation
    ceremony answered it: REV-05 then judges the ceremony's CA (here: the revocation 30 hours after detection)."""
    root = _prepared("REV-05", golden_software, tmp_path)
    detected = DEFECTS_AT - timedelta(hours=30)
    _compromise_on_record(root, detected, detected + timedelta(hours=1))
    path = root / "registers" / "incidents.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["incidents"][-1].pop("ca")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert _rev05(root, AS_OF) == [("fail", COMPROMISE, "revocation-late")]


def test_rev01_asks_no_more_crls_of_a_ca_revoked_for_a_compromise(golden_software: Path, tmp_path: Path) -> None:
    """The issuing CA's certificate revoked for keyCompromise: its last CRL may lapse (the root's ARL says
    everything under it is invalid; a CRL signed with its key would prove nothing). Revoked as superseded, it may
    not."""
    late = None
    for reason, expected in (("superseded", [("fail", f"crl {ISSUING}", "stale")]), ("keyCompromise", [])):
        root = _copy(golden_software, tmp_path / reason)
        ws = Workspace.open(root, clock=clock.pin(DEFECTS_AT))
        try:
            revoke(ws, ca_name=ROOT, serial=ws.inventory.ca(ISSUING).serial, reason=reason, requested_by="bob",
                   approved_by="alice")  # fmt: skip
            publish_crl(ws, ROOT, by="bob")
            next_update = ws.inventory._execute("SELECT next_update FROM crls WHERE issuer_ca = ?", (ISSUING,))
            late = parse_time(next_update.fetchone()[0]) + timedelta(hours=1)
        finally:
            ws.close()
        findings = _assess(root, "REV-01", late)
        assert [(f.outcome, f.subject, f.code) for f in findings if f.outcome != "pass"] == expected, reason
        if not expected:
            assert findings[0].message.endswith("; 1 CA(s) revoked for a compromise publish no more")
        from ceremony.compliance.calendar import workspace_calendar

        ws = Workspace.open(root, clock=clock.pin(late))
        try:
            subjects = {i.subject for i in workspace_calendar(Evidence(ws)).items if i.kind == "crl-next-update"}
        finally:
            ws.close()
        assert (f"crl {ISSUING}" in subjects) == bool(expected), reason  # nothing falls due of a compromised CA
