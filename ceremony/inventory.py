"""The inventory: every CA and certificate, parsed once at issue time, plus the DER (SQLite, WAL)."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ceremony.errors import InputError, StateError

#: Schema migrations, applied in order; PRAGMA user_version records how many ran.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE cas (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
        profile TEXT NOT NULL,
        key_store TEXT NOT NULL CHECK (key_store IN ('pkcs11', 'software')),
        key_label TEXT NOT NULL,
        issuer_ca TEXT REFERENCES cas(name),
        serial TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE certificates (
        serial TEXT NOT NULL,
        issuer_ca TEXT NOT NULL,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        eui64 TEXT,
        role TEXT,
        usage TEXT,
        name TEXT,
        profile TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        key_algorithm TEXT NOT NULL,
        signature_algorithm TEXT NOT NULL,
        policy_oids TEXT NOT NULL,
        ski TEXT NOT NULL,
        aki TEXT,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'valid',
        approved_by TEXT NOT NULL,
        csr_sha256 TEXT,
        key_store TEXT,
        batch_id TEXT,
        ceremony_id TEXT,
        issued_at TEXT NOT NULL,
        artifact TEXT,
        der BLOB NOT NULL,
        PRIMARY KEY (issuer_ca, serial)
    );
    CREATE INDEX certificates_eui64 ON certificates (eui64, usage);
    CREATE UNIQUE INDEX certificates_fingerprint ON certificates (fingerprint);
    """,
    """
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        issuer_ca TEXT NOT NULL REFERENCES cas(name),
        profile TEXT NOT NULL,
        list_sha256 TEXT NOT NULL,
        approved_by TEXT NOT NULL,
        rekey INTEGER NOT NULL,
        requested INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'complete')),
        bundle TEXT,
        bundle_sha256 TEXT,
        created_at TEXT NOT NULL,
        completed_at TEXT
    );
    CREATE INDEX certificates_batch ON certificates (batch_id);
    CREATE TABLE revocations (
        issuer_ca TEXT NOT NULL,
        serial TEXT NOT NULL,
        reason TEXT NOT NULL,
        revoked_at TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        approved_by TEXT NOT NULL,
        PRIMARY KEY (issuer_ca, serial),
        FOREIGN KEY (issuer_ca, serial) REFERENCES certificates (issuer_ca, serial)
    );
    CREATE TABLE crls (
        issuer_ca TEXT NOT NULL REFERENCES cas(name),
        number INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('crl', 'arl')),
        this_update TEXT NOT NULL,
        next_update TEXT NOT NULL,
        entries INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        artifact TEXT NOT NULL,
        PRIMARY KEY (issuer_ca, number)
    );
    """,
    """
    CREATE TABLE symmetric_keys (
        label TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        length INTEGER NOT NULL,
        kcv TEXT NOT NULL,
        kcv_method TEXT NOT NULL,
        purpose TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('components', 'token', 'unwrapped')),
        state TEXT NOT NULL CHECK (state IN
            ('pre-active', 'active', 'suspended', 'deactivated', 'compromised', 'destroyed')),
        created_at TEXT NOT NULL,
        activated_at TEXT,
        rotation_due TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        wrapped_by TEXT REFERENCES symmetric_keys(label),
        predecessor TEXT REFERENCES symmetric_keys(label),
        serves TEXT NOT NULL,
        wrapped_export INTEGER NOT NULL,
        ceremony_id TEXT
    );
    CREATE TABLE key_custody (
        key_label TEXT NOT NULL REFERENCES symmetric_keys(label),
        component INTEGER NOT NULL,
        custodian TEXT NOT NULL,
        kcv TEXT NOT NULL,
        bag_sealed TEXT,
        bag_unsealed TEXT,
        ceremony_id TEXT NOT NULL,
        PRIMARY KEY (key_label, component),
        UNIQUE (key_label, custodian)
    );
    CREATE TABLE key_wraps (
        key_label TEXT NOT NULL,
        kek_label TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('export', 'import', 'rewrap')),
        kcv TEXT NOT NULL,
        kek_kcv TEXT NOT NULL,
        file TEXT,
        file_sha256 TEXT,
        at TEXT NOT NULL,
        ceremony_id TEXT
    );
    """,
    """
    CREATE TABLE findings (
        fingerprint TEXT NOT NULL,
        severity TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX findings_fingerprint ON findings (fingerprint);
    """,
)

#: Certificate columns in table order (the fast path inserts tuples in this order).
CERTIFICATE_COLUMNS: tuple[str, ...] = (
    "serial", "issuer_ca", "issuer", "subject", "eui64", "role", "usage", "name", "profile", "not_before",
    "not_after", "key_algorithm", "signature_algorithm", "policy_oids", "ski", "aki", "fingerprint", "status",
    "approved_by", "csr_sha256", "key_store", "batch_id", "ceremony_id", "issued_at", "artifact", "der",
)  # fmt: skip


@dataclass(frozen=True)
class CertificateRecord:
    """One inventory row: the analyst's columns, parsed once at issue time."""

    serial: str
    issuer_ca: str
    issuer: str
    subject: str
    eui64: str | None
    role: str | None
    usage: str | None
    name: str | None
    profile: str
    not_before: str
    not_after: str
    key_algorithm: str
    signature_algorithm: str
    policy_oids: str
    ski: str
    aki: str | None
    fingerprint: str
    status: str
    approved_by: str
    csr_sha256: str | None
    key_store: str | None
    batch_id: str | None
    ceremony_id: str | None
    issued_at: str
    artifact: str | None
    der: bytes


@dataclass(frozen=True)
class CARecord:
    name: str
    role: str
    profile: str
    key_store: str
    key_label: str
    issuer_ca: str | None
    serial: str
    created_at: str


EXPORT_COLUMNS = [f.name for f in fields(CertificateRecord) if f.name != "der"]
assert tuple(f.name for f in fields(CertificateRecord)) == CERTIFICATE_COLUMNS


class Inventory:
    """The inventory store. One connection per instance; writes go through ``transaction``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StateError(
                f"{self.path} has schema version {version}; this tool knows {len(MIGRATIONS)} (upgrade the workbench)"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                # One statement at a time: executescript() would COMMIT the open transaction.
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- certificates -----------------------------------------------------------------
    def serial_exists(self, issuer_ca: str, serial: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM certificates WHERE issuer_ca = ? AND serial = ?", (issuer_ca, serial)
        ).fetchone()
        return row is not None

    def valid_for_identity(self, issuer_ca: str, profile: str, eui64: str, usage: str, role: str | None) -> list[str]:
        """Serials of valid certificates already issued for (EUI-64, usage[, role]) by this CA."""
        rows = self._db.execute(
            "SELECT serial FROM certificates WHERE issuer_ca = ? AND profile = ? AND eui64 = ? "
            "AND usage = ? AND status = 'valid' AND (role IS ? OR role = ?)",
            (issuer_ca, profile, eui64, usage, role, role),
        ).fetchall()
        return [r[0] for r in rows]

    def add_certificate(self, db: sqlite3.Connection, record: CertificateRecord) -> None:
        row = asdict(record)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            db.execute(
                f"INSERT INTO certificates ({cols}) VALUES ({marks})",  # noqa: S608 - columns are our dataclass fields
                tuple(row.values()),
            )
        except sqlite3.IntegrityError as exc:
            raise StateError(
                f"certificate {record.serial} from {record.issuer_ca} is already in the inventory"
            ) from exc

    def add_certificate_rows(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert many rows at once, each a tuple in ``CERTIFICATE_COLUMNS`` order (batch issuance)."""
        marks = ", ".join("?" for _ in CERTIFICATE_COLUMNS)
        try:
            db.executemany(f"INSERT INTO certificates VALUES ({marks})", rows)  # noqa: S608 - no user text
        except sqlite3.IntegrityError as exc:
            raise StateError(f"a certificate of this batch is already in the inventory ({exc})") from exc

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """A read query written in this package (never user text); values go in ``params``."""
        return self._db.execute(sql, params)

    def certificates(self, where: str = "", params: tuple[Any, ...] = ()) -> list[CertificateRecord]:
        # ``where`` is written by callers in this package, never by users; values go in ``params``.
        sql = "SELECT * FROM certificates" + (f" WHERE {where}" if where else "")  # noqa: S608
        return [CertificateRecord(**dict(r)) for r in self._db.execute(sql + " ORDER BY issued_at, serial", params)]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM certificates").fetchone()[0])

    # --- CAs --------------------------------------------------------------------------
    def add_ca(self, db: sqlite3.Connection, record: CARecord) -> None:
        try:
            db.execute("INSERT INTO cas VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(asdict(record).values()))
        except sqlite3.IntegrityError as exc:
            raise StateError(f"CA {record.name!r} already exists in this workspace") from exc

    def ca(self, name: str) -> CARecord:
        row = self._db.execute("SELECT * FROM cas WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(self.ca_names()) or "none"
            raise InputError(f"no CA named {name!r} in this workspace (known: {known})")
        return CARecord(**dict(row))

    def ca_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM cas ORDER BY created_at")]

    def ca_certificate_der(self, name: str) -> bytes:
        ca = self.ca(name)
        issuer = ca.issuer_ca or ca.name
        row = self._db.execute(
            "SELECT der FROM certificates WHERE issuer_ca = ? AND serial = ?", (issuer, ca.serial)
        ).fetchone()
        if row is None:
            raise StateError(f"CA {name!r} has no certificate in the inventory")
        return bytes(row[0])

    # --- export -----------------------------------------------------------------------
    def export_csv(self, out: Path, where: str = "", params: tuple[Any, ...] = ()) -> int:
        """One row per certificate (every column but the DER), streamed; returns the row count."""
        sql = f"SELECT {', '.join(EXPORT_COLUMNS)} FROM certificates" + (f" WHERE {where}" if where else "")  # noqa: S608
        count = 0
        with out.open("x", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_COLUMNS)
            for row in self._db.execute(sql + " ORDER BY issued_at, serial", params):
                writer.writerow(row)
                count += 1
        return count

    def export_pem(self, out: Path, where: str = "", params: tuple[Any, ...] = ()) -> int:
        """The certificates themselves, as concatenated PEM, streamed; returns the count."""
        sql = "SELECT der FROM certificates" + (f" WHERE {where}" if where else "")  # noqa: S608
        count = 0
        with out.open("xb") as fh:
            for (der,) in self._db.execute(sql + " ORDER BY issued_at, serial", params):
                fh.write(pem_certificate(bytes(der)))
                count += 1
        return count


def pem_certificate(der: bytes) -> bytes:
    """RFC 7468 PEM: base64 in 64-character lines."""
    import base64

    text = base64.b64encode(der)
    lines = b"\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"
