"""The inventory's batches: named queries over the batches table and the certificates each batch issued."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

import sqlalchemy as sa
from cryptography import x509

from ceremony.errors import StateError
from ceremony.model.profiles import ResolvedProfile
from ceremony.model.tbs import key_identifier
from ceremony.record.inventory import (
    CLAIM_FIRST,
    CLAIM_NEXT,
    CertificateRecord,
    Inventory,
    identity_claim,
    identity_taken,
)

_BATCH_COLUMNS = (
    "batch_id, issuer_ca, profile, list_sha256, approved_by, rekey, requested, status, bundle, bundle_sha256, "
    "created_at, completed_at"
)


@dataclass(frozen=True)
class BatchRecord:
    """One row of the batches table: a device list approved for one CA and profile, open or complete."""

    batch_id: str
    issuer_ca: str
    profile: str
    list_sha256: str
    approved_by: str
    rekey: bool
    requested: int
    status: str
    #: The bundle's path relative to the workspace, once the batch is complete.
    bundle: str | None
    bundle_sha256: str | None
    created_at: str
    completed_at: str | None


#: A certificate of a batch as the inventory stores it: a tuple, so that thousands go to the driver as they
#: are, with a name for every position: CertificateRecord's fields, in its order (``INSERT_BATCH_CERTIFICATE``
#: names its columns by them).
BatchCertificateRow = NamedTuple(  # type: ignore[misc]
    "BatchCertificateRow", [(f.name, f.type) for f in dataclasses.fields(CertificateRecord)]
)


INSERT_BATCH_CERTIFICATE = (
    f"INSERT INTO certificates ({', '.join(BatchCertificateRow._fields)}) "  # noqa: S608 - our column names
    f"VALUES ({', '.join('?' for _ in BatchCertificateRow._fields)})"
)
_NEW_ROW = tuple.__new__  # a BatchCertificateRow from a tuple at C speed: one row per certificate signed


class SignedInBatch(NamedTuple):
    """A certificate a batch worker signed and verified: what varies from one certificate of a batch to the next.

    A tuple (immutable, like a frozen dataclass): a chunk of them crosses from a pool worker to the parent
    pickled, and a tuple pickles at C speed."""

    serial: bytes  # 16 octets
    not_before: bytes  # UTCTime content octets
    der: bytes
    ski: bytes  # 8 octets
    eui64: bytes  # 8 octets
    ka: bool  # keyAgreement (usage ka), else digitalSignature (usage ds)
    csr_sha256: bytes  # 32 octets


def bundle_artifact(batch_id: str) -> str:
    """Where a batch's bundle lives, relative to the workspace (the ``artifact`` of each of its certificates)."""
    return f"artifacts/batches/{batch_id}.pem"


def _first_line(exc: BaseException) -> str:
    """A driver error's own first line (SQLAlchemy appends the statement and its parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


# --- the batches table ------------------------------------------------------------------------
def find_batch(inventory: Inventory, batch_id: str) -> BatchRecord | None:
    """The batch's row, or None when no run of this batch has opened it yet."""
    sql = f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id = ?"  # noqa: S608 - our column names
    row = inventory._execute(sql, (batch_id,)).fetchone()
    if row is None:
        return None
    values = dict(row._mapping)
    return BatchRecord(**{**values, "rekey": bool(values["rekey"])})


def batches(inventory: Inventory) -> list[BatchRecord]:
    """Every batch, in the order opened."""
    rows = inventory._execute(f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY created_at, batch_id")  # noqa: S608
    return [BatchRecord(**{**r._mapping, "rekey": bool(r._mapping["rekey"])}) for r in rows]


def open_batch(
    db: Inventory,
    *,
    batch_id: str,
    issuer_ca: str,
    profile: str,
    list_sha256: str,
    approved_by: str,
    rekey: bool,
    requested: int,
    created_at: str,
    batch_key: str | None = None,
) -> None:
    """A new batch, open until its bundle is written (``db``: the inventory inside a transaction).
    ``batch_key``: what makes two runs the same batch (``find_batch_by_key``; default: the batch id)."""
    db._execute(
        "INSERT INTO batches (batch_id, issuer_ca, profile, list_sha256, approved_by, rekey, requested, "
        "status, created_at, batch_key) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
        (batch_id, issuer_ca, profile, list_sha256, approved_by, int(rekey), requested, created_at,
         batch_key or batch_id),
    )  # fmt: skip


def find_batch_by_key(inventory: Inventory, batch_key: str) -> BatchRecord | None:
    """The batch an earlier run of the same list opened (``batch_key``): the open one, else the latest."""
    sql = (
        f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_key = ? "  # noqa: S608 - our column names
        "ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, created_at DESC, rowid DESC"
    )
    row = inventory._execute(sql, (batch_key,)).fetchone()
    if row is None:
        return None
    values = dict(row._mapping)
    return BatchRecord(**{**values, "rekey": bool(values["rekey"])})


def complete_batch(db: Inventory, batch_id: str, *, bundle: str, bundle_sha256: str, completed_at: str) -> None:
    """Close the batch with its bundle (``db``: the inventory inside a transaction)."""
    db._execute(
        "UPDATE batches SET status = 'complete', bundle = ?, bundle_sha256 = ?, completed_at = ? WHERE batch_id = ?",
        (bundle, bundle_sha256, completed_at, batch_id),
    )


# --- a batch's certificates -------------------------------------------------------------------
def issued_identities(inventory: Inventory, batch_id: str) -> Iterable[tuple[str, str]]:
    """(EUI-64, usage) of every certificate the batch has issued so far, streamed."""
    rows: Iterable[tuple[str, str]] = inventory._execute(
        "SELECT eui64, usage FROM certificates WHERE batch_id = ?", (batch_id,)
    )
    return rows


def valid_identities(inventory: Inventory, issuer_ca: str, profile: str, *, outside: str) -> Iterable[tuple[str, str]]:
    """(EUI-64, usage) of every valid certificate of ``profile`` from ``issuer_ca`` not issued by batch ``outside``."""
    rows: Iterable[tuple[str, str]] = inventory._execute(
        "SELECT eui64, usage FROM certificates WHERE issuer_ca = ? AND profile = ? AND status = 'valid' "
        "AND (batch_id IS NULL OR batch_id <> ?)",
        (issuer_ca, profile, outside),
    )
    return rows


def issued_count(inventory: Inventory, batch_id: str) -> int:
    return int(inventory._execute("SELECT COUNT(*) FROM certificates WHERE batch_id = ?", (batch_id,)).scalar_one())


def issued_serials(inventory: Inventory, batch_id: str) -> Iterator[str]:
    """The batch's serials in the order they were recorded, streamed."""
    for (serial,) in inventory._execute(
        "SELECT serial FROM certificates WHERE batch_id = ? ORDER BY rowid", (batch_id,)
    ):
        yield serial


def issued_certificates(inventory: Inventory, batch_id: str) -> Iterator[bytes]:
    """The batch's certificates (DER) in the order they were recorded, streamed."""
    for (der,) in inventory._execute("SELECT der FROM certificates WHERE batch_id = ? ORDER BY rowid", (batch_id,)):
        yield bytes(der)  # PostgreSQL's BYTEA can come back as a memoryview


def issued_serials_and_certificates(inventory: Inventory, batch_id: str) -> Iterator[tuple[str, bytes]]:
    """(serial, DER) of the batch's certificates in the order they were recorded, streamed: what the bundle and the
    serial list digest are made of, in one pass."""
    rows = inventory._execute("SELECT serial, der FROM certificates WHERE batch_id = ? ORDER BY rowid", (batch_id,))
    for serial, der in rows:
        yield serial, bytes(der)  # PostgreSQL's BYTEA can come back as a memoryview


def certificate_rows(
    *,
    profile: ResolvedProfile,
    issuer_ca: str,
    profile_name: str,
    approved_by: str,
    issuer_cert: x509.Certificate,
    batch_id: str,
) -> Callable[[SignedInBatch, str], BatchCertificateRow]:
    """The inventory row of each signed certificate of a batch (given when it was recorded): what varies,
    around what the whole batch shares, computed once here."""
    template_not_after = datetime.strptime(profile.rules.validity.fixed_not_after or "", "%Y%m%d%H%M%SZ")
    not_after = template_not_after.replace(tzinfo=timezone.utc).isoformat()
    issuer = issuer_cert.subject.rfc4514_string()
    aki = key_identifier(issuer_cert.public_key()).hex().upper()  # type: ignore[arg-type]
    policies = " ".join(profile.policy_oids)
    artifact = bundle_artifact(batch_id)

    @functools.cache
    def iso(utc_time: bytes) -> str:
        return datetime.strptime(utc_time.decode(), "%y%m%d%H%M%SZ").replace(tzinfo=timezone.utc).isoformat()

    def row(s: SignedInBatch, issued_at: str) -> BatchCertificateRow:
        return _NEW_ROW(BatchCertificateRow, (
            s.serial.hex().upper(), issuer_ca, issuer, "", s.eui64.hex().upper(), None,
            "ka" if s.ka else "ds", None, profile_name, iso(s.not_before), not_after, "ec-p256", "ecdsa-with-SHA256",
            policies, s.ski.hex().upper(), aki, hashlib.sha256(s.der).hexdigest(), "valid", approved_by,
            s.csr_sha256.hex(), None, batch_id, None, issued_at, artifact, s.der, 256,
        ))  # fmt: skip

    return row


class IdentityTaken(StateError):
    """A chunk of a batch holds an identity that another run gave a valid certificate meanwhile."""


_CSR_SHA256_AT = BatchCertificateRow._fields.index("csr_sha256")


def record_signed(
    db: Inventory, rows: list[BatchCertificateRow], *, csrs: Sequence[bytes], rekey: bool = False
) -> None:
    """Insert a chunk of a batch's certificates at once, with the CSR each was issued from (``db``: the inventory
    inside a transaction).

    Each claims its identity's generation 0 (``ceremony.record.inventory.IDENTITY_CLAIMS``); a re-key's the
    next one of its identity, in the same transaction, so the old certificate stays valid beside it. ``csrs``
    holds each row's CSR (DER), in row order: archived in the same transaction (``Inventory.archive_csrs``), so
    that the archive and the certificates agree, also when a run is killed and resumed.

    Raises:
        IdentityTaken: an identity of the chunk already has a valid certificate from this CA key.
        StateError: one of them is already in the inventory (a serial or a fingerprint seen before), or a CSR
            is not the one its row names (a bug: nothing of the chunk is recorded).
    """
    try:
        db._executemany(INSERT_BATCH_CERTIFICATE, rows)
        claims = [identity_claim(row, rekey=rekey) for row in rows]
        db._executemany(CLAIM_NEXT if rekey else CLAIM_FIRST, [c for c in claims if c is not None])
    except sa.exc.IntegrityError as exc:
        if identity_taken(exc):
            raise IdentityTaken("an identity of this chunk already has a valid certificate") from exc
        raise StateError(f"a certificate of this batch is already in the inventory ({_first_line(exc)})") from exc
    digests = db.archive_csrs(db, csrs) if len(csrs) == len(rows) else []
    if len(digests) != len(rows) or any(d != row[_CSR_SHA256_AT] for d, row in zip(digests, rows, strict=True)):
        raise StateError("a CSR of this chunk is not the one its certificate was issued from; nothing of it recorded")


def record_signed_uncommitted(
    inventory: Inventory, rows: list[BatchCertificateRow], *, csrs: Sequence[bytes], rekey: bool = False
) -> Callable[[], None]:
    """``record_signed`` in a transaction of its own, opened here and left open: returns its commit, for the caller
    to run once, in this thread or another one, while nothing else uses the inventory (a batch commits a chunk, and
    waits for the disk, while it signs the next). What ``record_signed`` raises is raised here, the transaction
    rolled back."""
    transaction = inventory.transaction()
    db = transaction.__enter__()
    try:
        record_signed(db, rows, csrs=csrs, rekey=rekey)
    except BaseException as exc:
        transaction.__exit__(type(exc), exc, exc.__traceback__)  # ROLLBACK, then the error goes on from here
        raise

    def commit() -> None:
        transaction.__exit__(None, None, None)

    return commit


def first_taken(inventory: Inventory, rows: list[BatchCertificateRow]) -> str:
    """``EUI-64 usage`` of the first row whose identity holds a valid certificate outside the row's batch."""
    names: tuple[str, ...] = BatchCertificateRow._fields
    at = {name: i for i, name in enumerate(names)}
    for row in rows:
        eui64: str = row[at["eui64"]]
        usage: str = row[at["usage"]]
        found = inventory._execute(
            "SELECT 1 FROM certificates WHERE aki = ? AND eui64 = ? AND usage = ? AND status = 'valid' "
            "AND (batch_id IS NULL OR batch_id <> ?)",
            (row[at["aki"]], eui64, usage, row[at["batch_id"]]),
        ).fetchone()
        if found is not None:
            return f"{eui64} {usage}"
    return "of this chunk"
