"""Batch issuance for a device fleet: validate the whole list, then sign from a DER template, resumably.

The device list is the approved request: a CSV with the columns ``eui64,usage,csr`` (the CSR path
relative to the list's directory, PEM or DER). Its SHA-256, the CA, the profile and the re-key
flag make the batch id, so running the same command again after a crash or a kill issues only
what is missing. Each chunk of certificates is committed to the inventory in one transaction;
the batch's bundle (one PEM file of all its certificates) is written once, from the inventory,
when the batch completes, so the inventory and the bundle always agree.

Every certificate costs one CSR signature verification, one CA signature and one verification
of that signature with the CA's public key. The profile's exemplar is linted in full once per
batch and proven byte-for-byte equal to the cryptography builder's output; a sample (first,
last and ``sample_rate`` of the rest) gets the full post-issuance profile checks.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError
from ceremony.issue.signing import issuer_of
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.csr import MAX_CSR_BYTES, csr_der
from ceremony.model.der import serial_hex
from ceremony.model.people import check_person, operator
from ceremony.model.profiles import ResolvedProfile, get_profile
from ceremony.model.tbs import Issuer, Usage, key_identifier
from ceremony.model.template import P256_SPKI_PREFIX, TbsTemplate, assemble, batch_time, new_serial, utc_time
from ceremony.record.inventory import pem_certificate
from ceremony.record.workspace import Workspace

COLUMNS = ("eui64", "usage", "csr")
CHUNK = 1024
_EUI64 = re.compile(r"^[0-9A-Fa-f]{16}$")
_USAGES: dict[str, Usage] = {"ds": "ds", "ka": "ka"}
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Reject:
    """A device-list row the batch will not issue, and why (one line)."""

    row: int
    eui64: str
    usage: str
    csr: str
    reason: str

    def line(self) -> str:
        return f"row {self.row} ({self.eui64 or '-'} {self.usage or '-'}, {self.csr or '-'}): {self.reason}"


@dataclass
class BatchResult:
    batch_id: str
    requested: int
    issued_now: int = 0
    issued_before: int = 0
    rejected: list[Reject] = field(default_factory=list)
    bundle: Path | None = None
    bundle_sha256: str | None = None
    first_serial: str | None = None
    last_serial: str | None = None
    serials_sha256: str | None = None

    @property
    def issued(self) -> int:
        return self.issued_now + self.issued_before

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "requested": self.requested,
            "issued": self.issued,
            "issued_now": self.issued_now,
            "issued_before": self.issued_before,
            "rejected": len(self.rejected),
            "bundle": str(self.bundle) if self.bundle else None,
            "bundle_sha256": self.bundle_sha256,
            "first_serial": self.first_serial,
            "last_serial": self.last_serial,
            "serials_sha256": self.serials_sha256,
        }


# --- the device list -------------------------------------------------------------------------
Row = tuple[int, str, str, str]  # (row number, eui64, usage, csr path as written)


@dataclass(frozen=True)
class DeviceList:
    """The list as read once (its bytes are what was approved); rows are parsed on each pass, not kept."""

    path: Path
    sha256: str
    text: str
    count: int

    def rows(self) -> Iterator[Row]:
        reader = csv.reader(self.text.splitlines())
        next(reader, None)
        for number, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            cells = [c.strip() for c in row] + [""] * 3
            yield number, cells[0], cells[1].lower(), cells[2]


def read_device_list(path: Path) -> DeviceList:
    """The CSV as written: header ``eui64,usage,csr``; rows numbered from 2 (the header is row 1)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--devices: cannot read {path} ({exc.strerror})") from None
    text = data.decode("utf-8-sig", errors="replace")
    header = next(csv.reader(text.splitlines()[:1]), None)
    if header is None or [h.strip().lower() for h in header] != list(COLUMNS):
        raise InputError(f"{path}: the header must be {','.join(COLUMNS)} (got {','.join(header or [])!r})")
    device_list = DeviceList(path, hashlib.sha256(data).hexdigest(), text, 0)
    count = sum(1 for _ in device_list.rows())
    if not count:
        raise InputError(f"{path}: the device list has no rows")
    return DeviceList(path, device_list.sha256, text, count)


def batch_id_for(device_list: DeviceList, checked: list[bytes | Reject], ca: str, profile: str, rekey: bool) -> str:
    """The same list with the same CSRs, for the same CA, profile and re-key choice: the same batch."""
    digest = hashlib.sha256(f"{device_list.sha256}|{ca}|{profile}|{'rekey' if rekey else 'new'}".encode())
    for outcome in checked:
        digest.update(outcome[74:106] if isinstance(outcome, bytes) else b"reject")
    return "b-" + digest.hexdigest()[:20]


def identity_key(eui64: bytes | str, ka: bool) -> int:
    """(EUI-64, usage) as one integer: compact keys for lists of a million rows."""
    value = int(eui64, 16) if isinstance(eui64, str) else int.from_bytes(eui64, "big")
    return value << 1 | ka


# --- work done in workers (fork: they inherit _CONTEXT, including the CA key and its session) ---------
_CONTEXT: dict[str, Any] = {}

#: A validated request, packed: EUI-64 (8) + usage (1: 0 ds, 1 ka) + P-256 point (65) + CSR SHA-256 (32).
PACKED = 106


def _split_csr(der: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """(certificationRequestInfo, signatureAlgorithm, signature, subject, subjectPKInfo) of a DER CSR, by offset."""

    def header(at: int) -> tuple[int, int]:
        length = der[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[at : at + count], "big")
            at += count
        return at, at + length

    body, end = header(0)
    if der[0] != 0x30 or end != len(der):
        raise ValueError("not one DER SEQUENCE")
    cri_start, cri_end = header(body)
    _, version_end = header(cri_start)
    _, subject_end = header(version_end)
    _, spki_end = header(subject_end)
    _, alg_end = header(cri_end)
    bits_start, bits_end = header(alg_end)
    if der[bits_start] != 0:
        raise ValueError("signature BIT STRING has unused bits")
    return (
        der[body:cri_end],
        der[cri_end:alg_end],
        der[bits_start + 1 : bits_end],
        der[version_end:subject_end],
        der[subject_end:spki_end],
    )


_ECDSA_SHA256_ALG = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256 = ec.SECP256R1()
_EMPTY_SUBJECT = b"\x30\x00"


def _read(path: str) -> bytes:
    """A CSR file's bytes, bounded like ``read_csr``: one open, one read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{path}: cannot read CSR ({exc.strerror})") from None
    try:
        data = os.read(fd, MAX_CSR_BYTES + 1)  # a directory or an empty FIFO fails here (EISDIR, EAGAIN)
    except OSError as exc:
        raise InputError(f"{path}: cannot read CSR ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CSR_BYTES:
        raise InputError(f"{path}: CSR file is over the limit of {MAX_CSR_BYTES} bytes (1 MiB)")
    return data


def _batched(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def validate_row(base: str, row: Row) -> bytes | Reject:
    """Check one row and its CSR (P-256, ecdsa-with-SHA256, proof of possession); pack it, or say why not."""
    number, eui64, usage, csr_path = row

    def reject(reason: str) -> Reject:
        return Reject(number, eui64, usage, csr_path, reason)

    if not _EUI64.match(eui64):
        return reject("EUI-64 must be 16 hex digits")
    if usage not in _USAGES:
        return reject("usage must be ds or ka")
    if not csr_path:
        return reject("no CSR path")
    if os.path.isabs(csr_path) or os.path.normpath(csr_path).split(os.sep)[0] == "..":
        return reject("the CSR path leaves the device list's folder (absolute, or through ..)")
    try:
        der = _read(os.path.join(base, csr_path))
        if der[:1] != b"\x30":
            der = csr_der(der, csr_path)
    except InputError as exc:
        return reject(exc.message.split(": ", 1)[-1])
    try:
        cri, alg, signature, subject, spki = _split_csr(der)
    except (ValueError, IndexError):
        return reject("CSR is not well-formed DER")
    if alg != _ECDSA_SHA256_ALG:
        return reject("CSR is not signed with ecdsa-with-SHA256 (absent parameters)")
    if len(spki) != len(P256_SPKI_PREFIX) + 65 or not spki.startswith(P256_SPKI_PREFIX):
        return reject("CSR key is not an uncompressed P-256 point")
    if subject != _EMPTY_SUBJECT:
        return reject("a device CSR must have an empty subject (the identity comes from the device list)")
    point = spki[len(P256_SPKI_PREFIX) :]
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(_P256, point)
        public.verify(signature, cri, _ECDSA)
    except ValueError:
        return reject("CSR public key is not a valid P-256 point")
    except Exception:  # noqa: BLE001 - InvalidSignature and anything cryptography raises on bad bytes
        return reject("CSR signature does not verify (no proof of possession)")
    if point == _CONTEXT.get("ca_point"):
        return reject("the CSR carries the CA's own public key")
    return bytes.fromhex(eui64) + bytes([usage == "ka"]) + point + hashlib.sha256(der).digest()


def _validate_chunk(rows: list[Row]) -> list[bytes | Reject]:
    base: str = _CONTEXT["base"]
    return [validate_row(base, row) for row in rows]


@dataclass(frozen=True)
class Signed:
    serial: bytes
    not_before: bytes  # UTCTime content octets
    der: bytes
    ski: bytes
    packed: bytes


def _issue_chunk(work: tuple[int, int, list[bytes], str, float, bytes]) -> list[Signed] | str:
    """Sign one chunk: fill the template, sign, assemble, verify each; full checks on the sample."""
    start, total, items, batch_id, sample_rate, not_before = work
    key: ec.EllipticCurvePrivateKey = _CONTEXT["key"]
    ca_public = _CONTEXT["ca_public"]
    templates: dict[int, TbsTemplate] = _CONTEXT["templates"]
    sample = _sampler(batch_id, total, sample_rate)
    out = []
    for offset, packed in enumerate(items):
        eui64, usage, point = packed[:8], packed[8], packed[9:74]
        serial = new_serial()
        tbs, ski = templates[usage].fill(serial, not_before, point, eui64)
        signature = key.sign(tbs, _ECDSA)
        try:
            ca_public.verify(signature, tbs, _ECDSA)
        except Exception:  # noqa: BLE001 - any failure here is a refusal of the whole chunk
            return f"the CA signature over serial {serial.hex().upper()} does not verify"
        der = assemble(tbs, signature)
        if sample(start + offset):
            problems = failing(check_certificate(der, _CONTEXT["profile"], issuer=_CONTEXT["issuer_cert"]))
            if problems:
                return f"post-issuance check of serial {serial.hex().upper()} failed: {problems[0]}"
        out.append(Signed(serial, not_before, der, ski, packed))
    return out


def _chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, list[T]]]:
    for start in range(0, len(items), size):
        yield start, list(items[start : start + size])


class _Runner:
    """Map a function over chunks: in this process (jobs 1) or a pool of forked workers."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None

    def map(self, fn: Callable[[T], R], work: Iterator[T]) -> Iterator[R]:
        if self.pool is None:
            return map(fn, work)
        return self.pool.imap(fn, work)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def _sampler(batch_id: str, total: int, rate: float) -> Callable[[int], bool]:
    threshold = int(rate * 2**32)

    def sample(index: int) -> bool:
        if index in (0, total - 1):
            return True
        digest = hashlib.sha256(f"{batch_id}:{index}".encode()).digest()
        return int.from_bytes(digest[:4], "big") < threshold

    return sample


def _progress(total: int, desc: str, enabled: bool | None) -> Any:
    try:  # a widget in JupyterLab (the lab extra installs ipywidgets), text on a terminal
        import ipywidgets  # type: ignore[import-not-found]  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="cert", disable=None if enabled is None else not enabled, leave=False)


# --- the batch -------------------------------------------------------------------------------
def issue_batch(
    ws: Workspace,
    *,
    ca_name: str,
    profile_name: str,
    devices: Path,
    approved_by: str,
    jobs: int = 1,
    skip_rejected: Path | None = None,
    rekey: bool = False,
    sample_rate: float = 0.01,
    progress: bool | None = None,
    say: Callable[[str], None] = print,
    chunk: int = CHUNK,
) -> BatchResult:
    """Validate the whole device list, then issue what is missing; see the module docstring."""
    check_person(approved_by, "--approved-by")
    if not 1 <= jobs <= (os.cpu_count() or 1) * 4:
        raise InputError(f"--jobs must be between 1 and {(os.cpu_count() or 1) * 4} (got {jobs})")
    if not 0.0 <= sample_rate <= 1.0:
        raise InputError(f"--sample-rate must be between 0 and 1 (got {sample_rate})")
    if skip_rejected is not None and skip_rejected.exists():
        raise InputError(f"--skip-rejected: {skip_rejected} exists; name a new file")
    profile = get_profile(profile_name, ws.config.oids)
    ws.journal.check_clock()
    device_list = read_device_list(devices)
    ca, issuer_cert, key = issuer_of(ws, ca_name)
    if ca.profile not in profile.rules.issued_by:
        raise InputError(
            f"profile {profile_name} must be issued by {', '.join(profile.rules.issued_by)}, not {ca_name}"
        )
    issuer = Issuer(issuer_cert.subject, key_identifier(issuer_cert.public_key()), issuer_cert.not_valid_after_utc)  # type: ignore[arg-type]
    templates = {0: TbsTemplate.build(profile, issuer, "ds"), 1: TbsTemplate.build(profile, issuer, "ka")}
    ca_point = issuer_cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    _CONTEXT.clear()
    _CONTEXT.update(
        base=str(devices.parent),
        ca_point=ca_point,
        key=key,
        ca_public=issuer_cert.public_key(),
        templates=templates,
        profile=profile,
        issuer_cert=issuer_cert,
    )
    runner = _Runner(jobs)
    try:
        checked = _check_rows(device_list, runner, progress, chunk)
        batch_id = batch_id_for(device_list, checked, ca_name, profile_name, rekey)
        result = BatchResult(batch_id, device_list.count)
        state = ws.inventory.execute("SELECT status FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        if state is not None and state[0] == "complete":
            return _completed(ws, result)
        accepted = _select(ws, device_list, checked, ca_name, profile_name, rekey, result)
        del checked  # a million rows: keep only what is still to issue
        if result.rejected:
            for reject in result.rejected:
                say(f"reject {reject.line()}")
            if skip_rejected is None:
                raise InputError(
                    f"{len(result.rejected)} of {device_list.count} rows rejected; nothing issued "
                    "(fix the list, or --skip-rejected FILE to issue the rest)"
                )
            _write_rejects(skip_rejected, result.rejected)
        _prove_exemplar(profile, issuer, templates, accepted, issuer_cert, ws.clock.now())
        _open(ws, result, device_list, ca_name, profile_name, approved_by, rekey, jobs, skip_rejected, state)
        _issue(ws, accepted, result, runner, profile, ca_name, profile_name, approved_by, issuer_cert, progress, chunk,
               sample_rate)  # fmt: skip
    finally:
        runner.close()
        _CONTEXT.clear()
    return _complete(ws, result, ca_name)


def _check_rows(device_list: DeviceList, runner: _Runner, progress: bool | None, chunk: int) -> list[bytes | Reject]:
    """Every row checked, CSRs verified (in the workers); in row order, one packed request or reject per row."""
    checked: list[bytes | Reject] = []
    with _progress(device_list.count, "validate", progress) as bar:
        for outcomes in runner.map(_validate_chunk, _batched(device_list.rows(), chunk)):
            checked += outcomes
            bar.update(len(outcomes))
    return checked


def _select(
    ws: Workspace,
    device_list: DeviceList,
    checked: list[bytes | Reject],
    ca_name: str,
    profile_name: str,
    rekey: bool,
    result: BatchResult,
) -> list[bytes]:
    """The valid requests still to issue: not issued by this batch already, not twice in the list, and
    (unless re-keying) not for an identity that already has a valid certificate from this CA."""
    done = {
        identity_key(row[0], row[1] == "ka")
        for row in ws.inventory.execute("SELECT eui64, usage FROM certificates WHERE batch_id = ?", (result.batch_id,))
    }
    result.issued_before = len(done)
    valid = set()
    if not rekey:
        valid = {
            identity_key(row[0], row[1] == "ka")
            for row in ws.inventory.execute(
                "SELECT eui64, usage FROM certificates WHERE issuer_ca = ? AND profile = ? AND status = 'valid' "
                "AND (batch_id IS NULL OR batch_id <> ?)",
                (ca_name, profile_name, result.batch_id),
            )
        }
    seen: dict[int, int] = {}
    accepted: list[bytes] = []
    for (number, eui64, usage, csr_path), outcome in zip(device_list.rows(), checked, strict=True):
        if isinstance(outcome, Reject):
            result.rejected.append(outcome)
            continue
        identity = identity_key(outcome[:8], bool(outcome[8]))
        if identity in seen:
            reason = f"the same EUI-64 and usage as row {seen[identity]}"
            result.rejected.append(Reject(number, eui64, usage, csr_path, reason))
            continue
        seen[identity] = number
        if identity in done:
            continue
        if identity in valid:
            reason = "already has a valid certificate from this CA (revoke it, or ask for a re-key with --rekey)"
            result.rejected.append(Reject(number, eui64, usage, csr_path, reason))
            continue
        accepted.append(outcome)
    return accepted


def _write_rejects(path: Path, rejects: list[Reject]) -> None:
    with path.open("x", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "eui64", "usage", "csr", "reason"])
        for r in rejects:
            writer.writerow([r.row, r.eui64, r.usage, r.csr, r.reason])


def _prove_exemplar(
    profile: ResolvedProfile,
    issuer: Issuer,
    templates: dict[int, TbsTemplate],
    accepted: list[bytes],
    issuer_cert: x509.Certificate,
    now: datetime,
) -> None:
    """Once per batch: the exemplar of each usage, built by the builder and by the template, byte for byte,
    then linted in full (signed with a throwaway key)."""
    usages: tuple[tuple[int, Usage], ...] = ((0, "ds"), (1, "ka"))
    for usage_byte, usage in usages:
        packed = next((p for p in accepted if p[8] == usage_byte), None)
        if packed is None:
            continue
        tbs = templates[usage_byte].prove(
            profile,
            issuer,
            usage,
            new_serial(),
            batch_time(now),
            packed[9:74],
            packed[:8],
        )
        throwaway = ec.generate_private_key(ec.SECP256R1())
        exemplar = assemble(tbs, throwaway.sign(tbs, ec.ECDSA(hashes.SHA256())))
        problems = failing(check_certificate(exemplar, profile))
        if problems:
            raise StateError(f"the {profile.name} exemplar fails its profile: {problems[0]}; batch refused")


def _open(
    ws: Workspace,
    result: BatchResult,
    device_list: DeviceList,
    ca_name: str,
    profile_name: str,
    approved_by: str,
    rekey: bool,
    jobs: int,
    skip_rejected: Path | None,
    state: Any,
) -> None:
    now = ws.clock.now().isoformat(timespec="microseconds")
    with ws.inventory.transaction() as db:
        if state is None:
            db.execute(
                "INSERT INTO batches (batch_id, issuer_ca, profile, list_sha256, approved_by, rekey, requested, "
                "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                (result.batch_id, ca_name, profile_name, device_list.sha256, approved_by, int(rekey),
                 result.requested, now),
            )  # fmt: skip
        ws.journal.append(
            "batch.start" if state is None else "batch.resume",
            {
                "batch_id": result.batch_id,
                "actor": operator(),
                "approved_by": approved_by,
                "ca": ca_name,
                "profile": profile_name,
                "devices": str(device_list.path),
                "list_sha256": device_list.sha256,
                "requested": result.requested,
                "already_issued": result.issued_before,
                "rejected": len(result.rejected),
                "rejects_file": str(skip_rejected) if skip_rejected else None,
                "rekey": rekey,
                "jobs": jobs,
            },
        )


def _issue(
    ws: Workspace,
    accepted: list[bytes],
    result: BatchResult,
    runner: _Runner,
    profile: ResolvedProfile,
    ca_name: str,
    profile_name: str,
    approved_by: str,
    issuer_cert: x509.Certificate,
    progress: bool | None,
    chunk: int,
    sample_rate: float,
) -> None:
    fixed = _fixed_columns(profile, ca_name, profile_name, approved_by, issuer_cert, result.batch_id)
    not_before = utc_time(batch_time(ws.clock.now()))  # one notBefore for every certificate of this run
    with _progress(len(accepted), "issue", progress) as bar:
        work = (
            (start, len(accepted), items, result.batch_id, sample_rate, not_before)
            for start, items in _chunks(accepted, chunk)
        )
        for signed in runner.map(_issue_chunk, work):
            if isinstance(signed, str):
                ws.journal.append("batch.refused", {"batch_id": result.batch_id, "reason": signed})
                raise StateError(f"batch {result.batch_id}: {signed}; this chunk was discarded, nothing of it recorded")
            issued_at = ws.clock.now().isoformat(timespec="microseconds")
            with ws.inventory.transaction() as db:
                ws.inventory.add_certificate_rows(db, [fixed(s, issued_at) for s in signed])
            result.issued_now += len(signed)
            bar.update(len(signed))


def _fixed_columns(
    profile: ResolvedProfile,
    ca_name: str,
    profile_name: str,
    approved_by: str,
    issuer_cert: x509.Certificate,
    batch_id: str,
) -> Callable[[Signed, str], tuple[Any, ...]]:
    """The inventory row of a signed certificate: what varies, around what the whole batch shares."""
    template_not_after = datetime.strptime(profile.rules.validity.fixed_not_after or "", "%Y%m%d%H%M%SZ")
    not_after = template_not_after.replace(tzinfo=timezone.utc).isoformat()
    issuer = issuer_cert.subject.rfc4514_string()
    aki = key_identifier(issuer_cert.public_key()).hex().upper()  # type: ignore[arg-type]
    policies = " ".join(profile.policy_oids)
    artifact = f"artifacts/batches/{batch_id}.pem"

    @functools.cache
    def iso(utc_time: bytes) -> str:
        return datetime.strptime(utc_time.decode(), "%y%m%d%H%M%SZ").replace(tzinfo=timezone.utc).isoformat()

    def row(s: Signed, issued_at: str) -> tuple[Any, ...]:
        not_before = iso(s.not_before)
        return (
            serial_hex(int.from_bytes(s.serial, "big")), ca_name, issuer, "", s.packed[:8].hex().upper(), None,
            "ka" if s.packed[8] else "ds", None, profile_name, not_before, not_after, "ec-p256", "ecdsa-with-SHA256",
            policies, s.ski.hex().upper(), aki, hashlib.sha256(s.der).hexdigest(), "valid", approved_by,
            s.packed[74:106].hex(), None, batch_id, None, issued_at, artifact, s.der, 256,
        )  # fmt: skip

    return row


def _completed(ws: Workspace, result: BatchResult) -> BatchResult:
    row = ws.inventory.execute(
        "SELECT bundle, bundle_sha256 FROM batches WHERE batch_id = ?", (result.batch_id,)
    ).fetchone()
    result.bundle, result.bundle_sha256 = ws.root / row[0], row[1]
    _serials(ws, result)
    result.issued_before = ws.inventory.execute(
        "SELECT COUNT(*) FROM certificates WHERE batch_id = ?", (result.batch_id,)
    ).fetchone()[0]
    return result


def _serials(ws: Workspace, result: BatchResult) -> None:
    digest = hashlib.sha256()
    first = last = None
    for (serial,) in ws.inventory.execute(
        "SELECT serial FROM certificates WHERE batch_id = ? ORDER BY rowid", (result.batch_id,)
    ):
        digest.update(serial.encode() + b"\n")
        first = first or serial
        last = serial
    result.first_serial, result.last_serial, result.serials_sha256 = first, last, digest.hexdigest()


def _complete(ws: Workspace, result: BatchResult, ca_name: str) -> BatchResult:
    """Write the bundle once, from the inventory, and close the batch in the inventory and the journal."""
    relative = f"artifacts/batches/{result.batch_id}.pem"
    path = ws.root / relative
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a run killed while writing the bundle
    partial.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with partial.open("xb") as fh:
        for (der,) in ws.inventory.execute(
            "SELECT der FROM certificates WHERE batch_id = ? ORDER BY rowid", (result.batch_id,)
        ):
            pem = pem_certificate(bytes(der))
            digest.update(pem)
            fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        # A run killed between writing the bundle and closing the batch: the bundle must be this one.
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest.hexdigest():
            raise StateError(f"{path} does not hold this batch's certificates; inventory and bundle disagree")
        partial.unlink()
    else:
        os.rename(partial, path)
    _serials(ws, result)
    result.bundle, result.bundle_sha256 = path, digest.hexdigest()
    with ws.inventory.transaction() as db:
        db.execute(
            "UPDATE batches SET status = 'complete', bundle = ?, bundle_sha256 = ?, completed_at = ? "
            "WHERE batch_id = ?",
            (relative, result.bundle_sha256, ws.clock.now().isoformat(), result.batch_id),
        )
        ws.journal.append(
            "batch.complete",
            {
                "batch_id": result.batch_id,
                "ca": ca_name,
                "count": result.issued,
                "first_serial": result.first_serial,
                "last_serial": result.last_serial,
                "serials_sha256": result.serials_sha256,
                "outputs": {relative: result.bundle_sha256},
            },
        )
    return result
