"""Cross-checks (LOG-03, LOG-04, LOG-05, GOV-06): no one record is trusted on its own word.

An insider with write access to the workspace can edit the inventory, the journal (and re-chain it),
an artifact or a register. Each of those leaves the others behind: these checks compare the journal with
its signed checkpoints and with the journals earlier evidence packs carried (LOG-03); inventory rows with
journal entries, artifact files, CRL contents and the token's public keys (LOG-04); the times each of
them gives (LOG-05); and every register with its last record in the journal (GOV-06). A disagreement is
a finding that names both sides; which side lies is for the assessor to establish.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.compliance.controls.seats import seats_of
from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence, parse_time
from ceremony.errors import CeremonyError
from ceremony.fs import open_regular, read_regular, sha256_file
from ceremony.model.events import Event
from ceremony.record.checkpoints import CHECKPOINTS_FILE, checkpoint_problems, workspace_identity
from ceremony.record.crossref import StoredCertificate, stored_cas, stored_certificates
from ceremony.record.inventory import pem_certificate
from ceremony.record.registers import RECORDERS, last_records, register_digest, register_files
from ceremony.record.revocations import revocations
from ceremony.record.transcript import read_entries

#: Events that carry one issued certificate's fingerprint (a recovery, after its run's issue line: the row's
#: time is the recovery's).
_ISSUES = (Event.CA_CREATE, Event.CERTIFICATE_ISSUE, Event.CERTIFICATE_RECOVER)
#: A certificate file is a few kB; the cross-checks read no more of one.
_CERTIFICATE_FILE_LIMIT = 1 << 16
#: The artifact folders whose every file the inventory must know.
_ARTIFACTS = ("certificates", "cas", "crls", "batches")


def _spki_sha256(public: Any) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _certificates(ev: Evidence) -> list[StoredCertificate]:
    if "stored_certificates" not in ev.cache:
        ev.cache["stored_certificates"] = stored_certificates(ev.ws.inventory)
    return ev.cache["stored_certificates"]  # type: ignore[no-any-return]


def _read(path: Path, limit: int) -> bytes:
    """A file the records name, read bounded and never through a link (empty: not such a file)."""
    try:
        return read_regular(path, limit, "artifact")
    except CeremonyError:
        return b""


def _pem_der(data: bytes) -> bytes | None:
    try:
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    except ValueError:
        return None


def _tolerance(ev: Evidence) -> timedelta:
    return timedelta(seconds=ev.policy.compliance.clock_tolerance_seconds)


# --- LOG-03: the journal anchored ----------------------------------------------------------------------------
def _known_keys(ev: Evidence) -> set[str]:
    keys = {str(k) for k in ev.frames.asymmetric_keys.get("spki_sha256", [])}
    for ca in stored_cas(ev.ws.inventory):
        try:
            keys.add(
                _spki_sha256(x509.load_der_x509_certificate(ev.ws.inventory.ca_certificate_der(ca.name)).public_key())
            )
        except (CeremonyError, ValueError):
            continue
    return keys


def earlier_packs(ev: Evidence) -> list[Path]:
    """Earlier evidence packs of this workspace (their journal begins with this journal's first entry)."""
    identity = workspace_identity(ev.journal)
    found = []
    for folder in ev.pack_folders:
        if not folder.is_dir():
            continue
        for pack in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            journal = pack / "journal.jsonl"
            if journal.is_file() and not journal.is_symlink():
                try:
                    first = read_entries(journal, first=1)
                except CeremonyError:
                    continue
                if identity and workspace_identity(first) == identity:
                    found.append(pack)
    return found


def journal_contradictions(current: list[dict[str, Any]], earlier: list[dict[str, Any]]) -> str | None:
    """How a journal an earlier pack carried disagrees with the journal now (None: it is a prefix of it)."""
    if len(earlier) > len(current):
        return f"it held {len(earlier)} journal entries; the journal now has {len(current)}"
    for old, new in zip(earlier, current, strict=False):
        if old.get("hash") != new.get("hash"):
            return f"its journal entry {old.get('seq')} ({old.get('event')}) reads differently in the journal now"
    return None


def _byte_prefix(earlier: Path, current: Path, block: int = 1 << 20) -> bool:
    """Whether ``earlier``'s bytes begin ``current`` (both regular files; False when either cannot be read)."""
    try:
        with open_regular(earlier, "journal") as old, open_regular(current, "journal") as new:
            while chunk := old.read(block):
                if new.read(len(chunk)) != chunk:
                    return False
        return True
    except CeremonyError:
        return False


def _check_sealed_transcripts(ev: Evidence, c: Checker, checkpoints: list[dict[str, Any]]) -> None:
    """A checkpoint made at a ceremony's seal names the transcript's sealed head: a transcript re-sealed
    since (an edit re-chained and signed again with the seal key) names another."""
    anchored: dict[str, tuple[Any, str]] = {}
    for record in [*checkpoints, *(e for e in ev.journal if e.get("event") == Event.JOURNAL_CHECKPOINT)]:
        anchors = record.get("anchors") or {}
        if isinstance(anchors, dict) and "transcript" in anchors and "sealed_hash" in anchors:
            anchored.setdefault(str(anchors["transcript"]), (record.get("checkpoint"), str(anchors["sealed_hash"])))
    for relative, (number, sealed) in sorted(anchored.items()):
        path = ev.ws.root / relative
        try:
            entries = read_entries(path) if path.is_file() and not path.is_symlink() else []
        except CeremonyError:
            entries = []
        seal = next((e for e in reversed(entries) if e.get("event") == Event.SEAL), None)
        if seal is None:
            c.fail(relative, "transcript-gone", f"checkpoint {number} anchored the seal of {relative}; it has none now")
        elif seal.get("sealed_hash") != sealed:
            c.fail(relative, "transcript-resealed",
                   f"checkpoint {number} anchored {relative} sealed at {sealed[:16]}…; it is sealed at "
                   f"{str(seal.get('sealed_hash'))[:16]}… now: it was edited and sealed again", relative)  # fmt: skip


def journal_anchored(ev: Evidence, c: Checker) -> None:
    checkpoints = read_entries(ev.ws.root / CHECKPOINTS_FILE)
    for p in checkpoint_problems(ev.journal, checkpoints, _known_keys(ev)):
        c.fail(p.subject, p.code, p.message, "journal.jsonl", CHECKPOINTS_FILE)
    _check_sealed_transcripts(ev, c, checkpoints)
    anchored_events = {Event.CRL_PUBLISH, Event.BATCH_COMPLETE}
    needs = [e for e in ev.journal if e.get("event") in anchored_events]
    if needs and not checkpoints:
        c.fail("journal", "unanchored", f"{len(needs)} CRL publications and batches, but no signed checkpoint")
    packs = earlier_packs(ev)
    for pack in packs:
        if _byte_prefix(pack / "journal.jsonl", ev.ws.journal.path):
            continue  # the same bytes: the same entries (the pack copied the journal as it stood)
        problem = journal_contradictions(ev.journal, read_entries(pack / "journal.jsonl"))
        if problem:
            c.fail(f"evidence pack {pack.name}", "contradicted",
                   f"the journal contradicts this earlier pack: {problem}", str(pack))  # fmt: skip
    c.checked(f"{len(checkpoints)} signed checkpoints; the journals of {len(packs)} earlier evidence packs")


# --- LOG-04: the records agree -------------------------------------------------------------------------------
def _journal_index(ev: Evidence) -> dict[str, Any]:
    """The journal's events by what they are about, read once per assessment (LOG-04 and LOG-05 share it)."""
    if "journal_index" not in ev.cache:
        ev.cache["journal_index"] = _index_journal(ev)
    return ev.cache["journal_index"]  # type: ignore[no-any-return]


def _revocations(ev: Evidence) -> dict[tuple[str, str], Any]:
    """The inventory's revocations by (issuing CA, serial), read once per assessment."""
    if "revocations" not in ev.cache:
        ev.cache["revocations"] = {(r.issuer_ca, r.serial): r for r in revocations(ev.ws.inventory)}
    return ev.cache["revocations"]  # type: ignore[no-any-return]


def _index_journal(ev: Evidence) -> dict[str, Any]:
    index: dict[str, Any] = {"issued": {}, "batch_start": {}, "batch_complete": {}, "revoked": {}, "crl": {},
                             "destroyed": set()}  # fmt: skip
    for e in ev.journal:
        event = e.get("event")
        if event in _ISSUES:
            index["issued"][str(e.get("fingerprint"))] = e
        elif event in (Event.BATCH_START, Event.BATCH_RESUME):
            index["batch_start"].setdefault(str(e.get("batch_id")), e)
        elif event == Event.BATCH_COMPLETE:
            index["batch_complete"][str(e.get("batch_id"))] = e
        elif event == Event.CERTIFICATE_REVOKE:
            for serial in e.get("serials") or []:
                index["revoked"][(str(e.get("ca")), str(serial))] = e
        elif event in (Event.CRL_PUBLISH, Event.CRL_RECOVER):
            index["crl"][(str(e.get("ca")), int(e.get("number", 0)))] = e
        elif event == Event.KEY_DESTROYED and not e.get("rehearsal"):
            index["destroyed"].add((e.get("token_label"), e.get("key_label")))
    return index


def _check_certificates(ev: Evidence, c: Checker, index: dict[str, Any]) -> None:
    rows = _certificates(ev)
    by_fingerprint = {r.fingerprint: r for r in rows}
    for fingerprint, entry in index["issued"].items():
        if fingerprint not in by_fingerprint:
            c.fail(f"certificate {entry.get('ca')} {entry.get('serial')}", "row-missing",
                   f"journal entry {entry.get('seq')} issued serial {entry.get('serial')}; the inventory has no row "
                   "for it", "journal.jsonl")  # fmt: skip
    for row in rows:
        entry = index["issued"].get(row.fingerprint)
        start = index["batch_start"].get(str(row.batch_id)) if row.batch_id else None
        approver = (entry or start or {}).get("approved_by")
        if approver is not None and approver != row.approved_by:
            c.fail(f"certificate {row.issuer_ca} {row.serial}", "approved-by",
                   f"the inventory says approved by {row.approved_by}; the journal (entry "
                   f"{(entry or start or {}).get('seq')}) says {approver}")  # fmt: skip
        if not row.artifact or row.batch_id or row.issuer_ca.startswith("ext:"):
            continue  # a batch's certificates are in its bundle (below); an import names the file it came from
        if not row.artifact.startswith("artifacts/") or ".." in Path(row.artifact).parts:
            c.fail(f"certificate {row.issuer_ca} {row.serial}", "artifact-outside",
                   f"the inventory names {row.artifact[:80]} as its file, outside the workspace's "
                   "artifacts")  # fmt: skip
            continue
        path = ev.ws.root / row.artifact
        if path.is_symlink() or not path.is_file():
            c.fail(f"certificate {row.issuer_ca} {row.serial}", "artifact-missing", f"{row.artifact} is gone")
        else:
            if _pem_der(_read(path, _CERTIFICATE_FILE_LIMIT)) != row.der:
                c.fail(f"certificate {row.issuer_ca} {row.serial}", "artifact",
                       f"{row.artifact} is not the certificate the inventory holds for serial {row.serial}",
                       row.artifact)  # fmt: skip


def _check_batches(ev: Evidence, c: Checker, index: dict[str, Any]) -> None:
    rows_of: dict[str, list[StoredCertificate]] = defaultdict(list)
    for row in _certificates(ev):
        if row.batch_id:
            rows_of[row.batch_id].append(row)
    for batch in ev.frames.batches.itertuples():
        batch_id = str(batch.batch_id)
        rows = rows_of.get(batch_id, [])
        done = index["batch_complete"].get(batch_id)
        if done is not None:
            serials = hashlib.sha256(b"".join(r.serial.encode() + b"\n" for r in rows)).hexdigest()
            if int(done.get("count", -1)) != len(rows) or done.get("serials_sha256") != serials:
                c.fail(f"batch {batch_id}", "rows",
                       f"the journal (entry {done.get('seq')}) completed {done.get('count')} certificates; the "
                       f"inventory holds {len(rows)} for the batch, or other serials")  # fmt: skip
        if not isinstance(batch.bundle, str) or not batch.bundle:
            continue
        path = ev.ws.root / batch.bundle
        if path.is_symlink() or not path.is_file():
            c.fail(f"batch {batch_id}", "bundle-missing", f"{batch.bundle} is gone")
            continue
        # The bundle is the batch's certificates as PEM, in the order recorded: its hash follows from the rows, so
        # neither the file nor the rows can change alone. Streamed: a national batch's bundle is large.
        expected = hashlib.sha256()
        for r in rows:
            expected.update(pem_certificate(r.der))
        try:
            actual = sha256_file(path, follow=False)
        except CeremonyError:
            actual = ""
        journalled = set((done or {}).get("outputs", {}).values()) if done else {actual}
        if actual != str(batch.bundle_sha256) or actual not in journalled or actual != expected.hexdigest():
            c.fail(f"batch {batch_id}", "bundle",
                   f"{batch.bundle} does not hold the {len(rows)} certificates the inventory records for the batch",
                   batch.bundle)  # fmt: skip


def _check_cas(ev: Evidence, c: Checker) -> None:
    keys = ev.frames.asymmetric_keys
    for ca in stored_cas(ev.ws.inventory):
        try:
            der = ev.ws.inventory.ca_certificate_der(ca.name)
        except CeremonyError as exc:
            c.fail(f"CA {ca.name}", "certificate-missing", exc.message)
            continue
        relative = f"artifacts/cas/{ca.name}.pem"
        path = ev.ws.root / relative
        if _pem_der(_read(path, _CERTIFICATE_FILE_LIMIT)) != der:
            c.fail(f"CA {ca.name}", "ca-certificate",
                   f"{relative} is not the CA certificate the inventory holds for {ca.name} (serial {ca.serial})",
                   relative)  # fmt: skip
        spki = _spki_sha256(x509.load_der_x509_certificate(der).public_key())
        active = keys[(keys["label"].astype(str) == ca.key_label) & (keys["state"].astype(str) == "active")]
        if len(active) and spki not in set(active["spki_sha256"].astype(str)):
            c.fail(f"CA {ca.name}", "key-record",
                   f"{ca.name}'s certificate certifies a key other than the one the inventory records for "
                   f"{ca.key_label}")  # fmt: skip
        try:
            on_token = _spki_sha256(ev.ws.key_store.load(ca.key_label).public_key())
        except CeremonyError as exc:
            c.indeterminate(f"CA {ca.name}", "token", f"cannot read {ca.key_label} from the token: {exc.message}")
            continue
        if on_token != spki:
            c.fail(f"CA {ca.name}", "token-key",
                   f"{ca.name}'s certificate certifies a key other than {ca.key_label} on the token")  # fmt: skip


def _check_unrecorded(ev: Evidence, c: Checker) -> None:
    known = {r.artifact for r in _certificates(ev) if r.artifact}
    known |= {str(a) for a in ev.frames.crls.get("artifact", [])}
    known |= {str(b) for b in ev.frames.batches.get("bundle", []) if isinstance(b, str)}
    known |= {f"artifacts/cas/{ca.name}.pem" for ca in stored_cas(ev.ws.inventory)}
    for sub in _ARTIFACTS:
        folder = ev.ws.artifacts_dir / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(ev.ws.root).as_posix()
            if path.is_dir() and not path.is_symlink():
                continue
            if relative in known or (sub == "cas" and path.name.endswith(".fingerprint.txt")):
                continue
            c.fail(relative, "unrecorded", f"{relative} is in the artifacts but in no inventory record", relative)


def _check_revocations(ev: Evidence, c: Checker, index: dict[str, Any]) -> None:
    recorded = _revocations(ev)
    for key, r in recorded.items():
        entry = index["revoked"].get(key)
        subject = f"certificate {key[0]} {key[1]}"
        if entry is None:
            c.fail(subject, "revocation-unlogged", f"the inventory records serial {key[1]} revoked ({r.reason}); "
                   "no journal entry revoked it")  # fmt: skip
            continue
        for field, ours in (("reason", r.reason), ("approved_by", r.approved_by), ("requested_by", r.requested_by)):
            if entry.get(field) != ours:
                c.fail(subject, f"revocation-{field.replace('_', '-')}",
                       f"the inventory records {field} {ours}; the journal (entry {entry.get('seq')}) says "
                       f"{entry.get(field)}")  # fmt: skip
    for key, entry in index["revoked"].items():
        if key not in recorded:
            c.fail(f"certificate {key[0]} {key[1]}", "revocation-missing",
                   f"journal entry {entry.get('seq')} revoked serial {key[1]}; the inventory has no "
                   "revocation")  # fmt: skip
    for row in _certificates(ev):
        if (row.status == "revoked") != ((row.issuer_ca, row.serial) in recorded):
            c.fail(f"certificate {row.issuer_ca} {row.serial}", "status",
                   f"the inventory marks serial {row.serial} {row.status}, but "
                   f"{'holds no' if row.status == 'revoked' else 'holds a'} revocation for it")  # fmt: skip


def _check_crls(ev: Evidence, c: Checker, index: dict[str, Any]) -> None:
    recorded = _revocations(ev)
    tolerance = _tolerance(ev)
    revoked_at = {key: parse_time(r.revoked_at).replace(microsecond=0) for key, r in recorded.items()}
    for published in ev.crls:
        row, subject, ca = published.row, published.subject, str(published.row.issuer_ca)
        if (ca, int(row.number)) not in index["crl"]:
            c.fail(subject, "crl-unlogged", f"{subject} is in the inventory; no journal entry published it")
        if published.file is None or published.file.crl is None:
            continue  # REV-02 reports an unreadable or changed file
        for serial, reason, when in published.file.entries:
            ours = recorded.get((ca, serial))
            if ours is None:
                continue  # REV-04
            if reason != ours.reason:
                c.fail(f"certificate {ca} {serial}", "crl-reason",
                       f"{subject} lists serial {serial} as {reason}; the inventory records {ours.reason}")  # fmt: skip
            if abs(when - revoked_at[(ca, serial)]) > tolerance:
                c.fail(f"certificate {ca} {serial}", "crl-date",
                       f"{subject} gives serial {serial} the revocation date {when:%Y-%m-%d %H:%M:%S}Z; the "
                       f"inventory records {ours.revoked_at}")  # fmt: skip


def _check_keys(ev: Evidence, c: Checker, index: dict[str, Any]) -> None:
    keys = ev.frames.asymmetric_keys
    for row in keys[keys["state"].astype(str) == "destroyed"].itertuples():
        if (str(row.token), str(row.label)) not in index["destroyed"]:
            c.fail(f"key {row.token}/{row.label}", "destroyed-unlogged",
                   f"the inventory records {row.label} on {row.token} destroyed; no journal entry "
                   "destroyed it")  # fmt: skip


def records_agree(ev: Evidence, c: Checker) -> None:
    index = _journal_index(ev)
    _check_certificates(ev, c, index)
    _check_batches(ev, c, index)
    _check_cas(ev, c)
    _check_unrecorded(ev, c)
    _check_revocations(ev, c, index)
    _check_crls(ev, c, index)
    _check_keys(ev, c, index)
    c.checked(
        f"{len(_certificates(ev))} certificates, {len(ev.frames.batches)} batches, {len(ev.frames.crls)} CRLs and "
        f"{len(ev.frames.cas)} CAs against {len(ev.journal)} journal entries, the artifact files and the token"
    )


# --- LOG-05: the times agree ---------------------------------------------------------------------------------
def _far(a: datetime, b: datetime, tolerance: timedelta) -> bool:
    return abs(a - b) > tolerance


def times_agree(ev: Evidence, c: Checker) -> None:
    index = _journal_index(ev)
    tolerance = _tolerance(ev)
    batch_span: dict[str, tuple[datetime, datetime]] = {}
    for batch_id, start in index["batch_start"].items():
        done = index["batch_complete"].get(batch_id)
        end = parse_time(done["time"]) if done else ev.as_of
        batch_span[batch_id] = (parse_time(start["time"]), end)
    for row in _certificates(ev):
        subject = f"certificate {row.issuer_ca} {row.serial}"
        issued, not_before = parse_time(row.issued_at), parse_time(row.not_before)
        if issued < not_before - tolerance:
            c.fail(subject, "issued-before-validity",
                   f"the inventory says issued {row.issued_at}, before its notBefore {row.not_before}")  # fmt: skip
        entry = index["issued"].get(row.fingerprint)
        if entry is not None and _far(parse_time(entry["time"]), issued, tolerance):
            c.fail(subject, "issued-at", f"the inventory says issued {row.issued_at}; the journal's entry "
                   f"{entry.get('seq')} is dated {entry['time']}")  # fmt: skip
        span = batch_span.get(str(row.batch_id)) if row.batch_id else None
        if span is not None and not (span[0] - tolerance <= issued <= span[1] + tolerance):
            c.fail(subject, "issued-at", f"the inventory says issued {row.issued_at}, outside its batch's journal "
                   f"span {span[0]:%Y-%m-%d %H:%M:%S}Z to {span[1]:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
    for r in _revocations(ev).values():
        entry = index["revoked"].get((r.issuer_ca, r.serial))
        if entry is None:
            continue
        if entry.get("revoked_at") != r.revoked_at or _far(parse_time(entry["time"]), parse_time(r.revoked_at),
                                                             tolerance):  # fmt: skip
            c.fail(f"certificate {r.issuer_ca} {r.serial}", "revoked-at",
                   f"the inventory says revoked {r.revoked_at}; the journal's entry {entry.get('seq')} says "
                   f"{entry.get('revoked_at')}, dated {entry['time']}")  # fmt: skip
    for published in ev.crls:
        row, subject = published.row, published.subject
        crl = published.file.crl if published.file else None
        this_update = parse_time(str(row.this_update)) if not isinstance(row.this_update, datetime) else row.this_update
        if crl is not None and _far(crl.last_update_utc, this_update, tolerance):
            c.fail(subject, "this-update", f"the inventory says {subject} was issued {row.this_update}; the CRL "
                   f"file's thisUpdate is {crl.last_update_utc:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
        entry = index["crl"].get((str(row.issuer_ca), int(row.number)))
        if (
            entry is not None
            and entry.get("event") == Event.CRL_PUBLISH
            and (_far(parse_time(entry["time"]), this_update, tolerance + timedelta(minutes=5)))
        ):
            c.fail(subject, "journal-time", f"the inventory says {subject} was issued {row.this_update}; the "
                   f"journal's entry {entry.get('seq')} publishing it is dated {entry['time']}")  # fmt: skip
    c.checked(f"issuance, revocation and CRL times against {len(ev.journal)} journal entries and the CRL files")


# --- GOV-06: registers on record -----------------------------------------------------------------------------
def _acts(ev: Evidence) -> list[tuple[str, str, str]]:
    """(person, time, what) for everything the journal and the transcripts say a person did."""
    out = []
    for e in ev.journal:
        for field in ("by", "approved_by", "requested_by"):
            if isinstance(e.get(field), str):
                out.append((e[field], str(e["time"]), f"{e.get('event')} (journal entry {e.get('seq')})"))
    for ceremony in ev.all_ceremonies:
        for person in sorted({pid for _, pid in seats_of(ceremony)}):
            out.append((person, str(ceremony.start.get("time", "")), f"a seat in ceremony {ceremony.ceremony_id}"))
    return out


def registers_on_record(ev: Evidence, c: Checker) -> None:
    records = last_records(ev.journal)
    files = register_files(ev.ws.root)
    for relative in files:
        last = records.get(relative)
        try:
            digest = register_digest(ev.ws.root, relative)
        except CeremonyError as exc:
            c.fail(relative, "unreadable", exc.message, relative)
            continue
        if last is None:
            c.fail(relative, "unrecorded", f"{relative} was never put on record (ceremony registers record)", relative)
        elif last.get("sha256") != digest:
            c.fail(relative, "changed", f"{relative} changed since {last.get('by')} recorded it on "
                   f"{str(last.get('time'))[:10]} (journal entry {last.get('seq')}); nobody recorded the change",
                   relative)  # fmt: skip
    people = ev.register.people
    for relative, last in records.items():
        person = people.get(str(last.get("by")))
        if person is None or not RECORDERS & set(person.roles):
            c.fail(relative, "recorder", f"{relative} was recorded by {last.get('by')}, who is no registered "
                   "administrator or compliance officer")  # fmt: skip
    _check_waivers(ev, c, records)
    _check_listed_in_time(ev, c)
    _check_hsms(ev, c)
    c.checked(f"{len(files)} registers against {len(records)} records in the journal")


def _check_waivers(ev: Evidence, c: Checker, records: dict[str, dict[str, Any]]) -> None:
    try:
        waivers = ev.registers["waivers"].waivers
    except CeremonyError:
        return
    recorder = records.get("registers/waivers.yaml", {}).get("by")
    for waiver in waivers:
        subject = f"waiver of {waiver.control}" + (f" ({waiver.subject})" if waiver.subject else "")
        person = ev.register.people.get(waiver.approved_by)
        if person is None or not {"approver", "compliance-officer"} & set(person.roles):
            c.fail(subject, "waiver-approver", f"{subject} is approved by {waiver.approved_by}, who is no registered "
                   "approver")  # fmt: skip
        elif waiver.approved_by == recorder:
            c.fail(subject, "waiver-self", f"{subject} is approved by {recorder}, who also recorded the waivers "
                   "register: a waiver needs a second person")  # fmt: skip
        elif waiver.subject and re.search(rf"\b{re.escape(waiver.approved_by)}\b", waiver.subject):
            c.fail(subject, "waiver-self", f"{subject} is approved by {waiver.approved_by}, whose own finding it "
                   "waives")  # fmt: skip


def _check_listed_in_time(ev: Evidence, c: Checker) -> None:
    first_listed: dict[str, str] = {}
    for e in ev.journal:
        if e.get("event") == Event.REGISTER_RECORD and e.get("people") is not None:
            for person in e["people"]:
                first_listed.setdefault(person, str(e["time"]))
    if not first_listed:
        return
    reported: set[str] = set()
    for person, when, what in sorted(_acts(ev), key=lambda a: a[1]):
        listed = first_listed.get(person)
        if person in reported or person not in ev.register.people:
            continue
        if listed is None or when < listed:
            reported.add(person)
            c.fail(f"person {person}", "listed-late",
                   f"{person} acted ({what}, {when[:19]}) before the participant register on record listed them"
                   + (f" ({listed[:19]})" if listed else ""))  # fmt: skip


def _check_hsms(ev: Evidence, c: Checker) -> None:
    config = ev.ws.config.key_store
    software_token = config.kind == "pkcs11" and (config.softhsm_conf is not None or "softhsm" in (config.module or ""))
    if not software_token:
        return
    try:
        hsms = ev.registers["hsms"].hsms
    except CeremonyError:
        return
    for hsm in hsms:
        if ev.ws.token_label in hsm.token_labels and (hsm.fips_level or 0) > 0:
            c.fail(f"hsm {hsm.id}", "token-model",
                   f"registers/hsms.yaml declares {ev.ws.token_label} FIPS 140 level {hsm.fips_level} ({hsm.model}); "
                   "the workspace's token is SoftHSM2, a software token with no validation")  # fmt: skip
