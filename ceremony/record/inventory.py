"""The inventory: every CA, certificate, key, CRL and ceremony, parsed once at issue time, plus the DER.

One store, two engines, one code path (SQLAlchemy Core): SQLite in the workspace (WAL) by default,
or PostgreSQL when ``workspace.yaml`` names a ``postgresql://`` URL, so several operators can share one
inventory. The SQL is written once, with ``?`` placeholders; the store rewrites them for the driver.
Only the record layer writes SQL: the other layers call the named queries and writes here and in the
domain modules beside it (``crls``, ``revocations``, ``symmetric_keys``), which take and give typed records.
PostgreSQL has no ``rowid``: every table there gets an identity column of that name, so "in the order
inserted" reads the same on both.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from ceremony.errors import ConfigError, InputError, StateError
from ceremony.fs import create
from ceremony.model.algorithms import CAPublicKey, key_algorithm_of
from ceremony.model.der import key_size_bits
from ceremony.model.events import Event

#: Schema migrations, applied in order; SQLite's PRAGMA user_version (PostgreSQL: table schema_version)
#: records how many ran. Written for SQLite; ``_ddl`` adapts them to PostgreSQL.
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
    """
    ALTER TABLE certificates ADD COLUMN key_size INTEGER;
    CREATE TABLE ceremonies (
        ceremony_id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        file TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        rehearsal INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        sealed_at TEXT,
        entries INTEGER,
        deviations INTEGER,
        seal_words TEXT,
        transcript TEXT NOT NULL,
        transcript_sha256 TEXT
    );
    CREATE TABLE asymmetric_keys (
        token TEXT NOT NULL,
        label TEXT NOT NULL,
        key_store TEXT NOT NULL CHECK (key_store IN ('pkcs11', 'software')),
        purpose TEXT NOT NULL CHECK (purpose IN ('ca', 'seal')),
        algorithm TEXT NOT NULL,
        key_size INTEGER,
        spki_sha256 TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('generated', 'unwrapped')),
        state TEXT NOT NULL CHECK (state IN ('active', 'destroyed')),
        created_at TEXT NOT NULL,
        destroyed_at TEXT,
        ceremony_id TEXT
    );
    CREATE UNIQUE INDEX asymmetric_keys_active ON asymmetric_keys (token, label) WHERE state = 'active';
    CREATE TABLE transcript_entries (
        ceremony_id TEXT NOT NULL REFERENCES ceremonies(ceremony_id),
        seq INTEGER NOT NULL,
        time TEXT NOT NULL,
        event TEXT NOT NULL,
        step TEXT,
        hash TEXT NOT NULL,
        PRIMARY KEY (ceremony_id, seq)
    );
    """,
    # One valid certificate per identity (see ``IDENTITY_CLAIMS``): the valid certificates already on record
    # claim their identities, numbered in the order recorded (a re-key from before this migration still opens).
    """
    CREATE TABLE valid_identities (
        aki TEXT NOT NULL,
        eui64 TEXT NOT NULL,
        usage TEXT NOT NULL,
        role TEXT NOT NULL,
        generation INTEGER NOT NULL,
        issuer_ca TEXT NOT NULL,
        serial TEXT NOT NULL,
        PRIMARY KEY (aki, eui64, usage, role, generation),
        UNIQUE (issuer_ca, serial)
    );
    INSERT INTO valid_identities (aki, eui64, usage, role, generation, issuer_ca, serial)
    SELECT aki, eui64, usage, COALESCE(role, ''), (
        SELECT COUNT(*) FROM certificates AS older
        WHERE older.aki = c.aki AND older.eui64 = c.eui64 AND older.usage = c.usage
        AND COALESCE(older.role, '') = COALESCE(c.role, '') AND older.status = 'valid' AND older.rowid < c.rowid
    ), issuer_ca, serial FROM certificates AS c
    WHERE status = 'valid' AND eui64 IS NOT NULL AND usage IS NOT NULL AND aki IS NOT NULL
        AND substr(issuer_ca, 1, 4) <> 'ext:';
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        acquired_at TEXT NOT NULL
    );
    ALTER TABLE batches ADD COLUMN batch_key TEXT;
    UPDATE batches SET batch_key = batch_id;
    CREATE INDEX batches_key ON batches (batch_key)
    """,
    # CA generations (issue M): a renewal ceremony's new CA succeeds its predecessor, which issues until the
    # overlap ends and signs CRLs for what it issued for as long as any of it is valid.
    """
    CREATE TABLE ca_successions (
        predecessor TEXT PRIMARY KEY REFERENCES cas(name),
        successor TEXT NOT NULL UNIQUE REFERENCES cas(name),
        ceremony_id TEXT NOT NULL,
        succeeded_at TEXT NOT NULL,
        issues_until TEXT NOT NULL
    )
    """,
    # The CSR archive: each issued certificate's CSR (DER) under its SHA-256 (``certificates.csr_sha256``), written
    # in the transaction that records the certificate, so that a device can be re-certified under another CA from
    # the CSR it sent once (its proof of possession; the identity still comes from an approved request).
    """
    CREATE TABLE csrs (
        sha256 TEXT PRIMARY KEY,
        der BLOB NOT NULL
    )
    """,
)

#: Archive a CSR: (SHA-256 hex, DER); a CSR already archived stays as it is (the same CSR twice is one row).
ARCHIVE_CSR = "INSERT INTO csrs (sha256, der) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING"
#: Digests per look-up query of the archive (well under SQLite's and PostgreSQL's bound-parameter limits).
_ARCHIVE_LOOKUP = 500
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

#: The rule the inventory enforces itself (CRT-06; DOMAIN.md: "(EUI, role, keyUsage) has at most one valid
#: certificate"): a valid certificate the workbench issued to an identity claims it with a row of
#: ``valid_identities``, whose primary key is (issuing CA key, EUI-64, usage, role, generation), inserted in the
#: transaction that records the certificate and deleted in the one that revokes it. A first certificate claims
#: generation 0; an approved re-key (``--rekey``) claims one more than the identity's highest valid generation,
#: so that the old certificate stays valid (the re-key's roll-over) while two runs racing for the same slot (two
#: first issuances, or two re-keys) collide on the key: one commits, the other gets a one-line StateError. A
#: table rather than a partial index over ``certificates``: the certificate row stays exactly the analyst's
#: CertificateRecord (the importer and the batch fast path write it column for column), and the same DDL works on
#: SQLite and PostgreSQL. CA certificates and imported foreign certificates claim nothing.
IDENTITY_CLAIMS = "valid_identities"
_CLAIM_COLUMNS = "aki, eui64, usage, role, generation, issuer_ca, serial"
#: A claim of generation 0: (aki, eui64, usage, role, issuer_ca, serial).
CLAIM_FIRST = f"INSERT INTO valid_identities ({_CLAIM_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?)"  # noqa: S608
#: A claim of the identity's next generation: (aki, eui64, usage, role, issuer_ca, serial, aki, eui64, usage, role).
CLAIM_NEXT = (
    f"INSERT INTO valid_identities ({_CLAIM_COLUMNS}) "  # noqa: S608
    "SELECT ?, ?, ?, ?, COALESCE(MAX(generation) + 1, 0), ?, ? FROM valid_identities "
    "WHERE aki = ? AND eui64 = ? AND usage = ? AND role = ?"
)


def identity_claim(record: Any, *, rekey: bool) -> tuple[Any, ...] | None:
    """The parameters of ``record``'s claim (CLAIM_NEXT's when ``rekey``), or None: it claims no identity."""
    if record.eui64 is None or record.usage is None or record.aki is None:
        return None
    key = (record.aki, record.eui64, record.usage, record.role or "")
    return (*key, record.issuer_ca, record.serial, *key) if rekey else (*key, record.issuer_ca, record.serial)


#: Certificate columns in table order (the fast path inserts tuples in this order).
CERTIFICATE_COLUMNS: tuple[str, ...] = (
    "serial", "issuer_ca", "issuer", "subject", "eui64", "role", "usage", "name", "profile", "not_before",
    "not_after", "key_algorithm", "signature_algorithm", "policy_oids", "ski", "aki", "fingerprint", "status",
    "approved_by", "csr_sha256", "key_store", "batch_id", "ceremony_id", "issued_at", "artifact", "der",
    "key_size",
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
    #: Bits of the subject key (the curve's size for EC keys).
    key_size: int | None = None


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


@dataclass(frozen=True)
class Succession:
    """A CA generation handing over: the successor issues from ``succeeded_at``; the predecessor until
    ``issues_until`` (the overlap), then only signs CRLs for what it issued."""

    predecessor: str
    successor: str
    ceremony_id: str
    succeeded_at: str
    issues_until: str


@dataclass(frozen=True)
class FindingRecord:
    """A lint finding of an imported certificate (a foreign CA's certificates are kept with what is wrong)."""

    fingerprint: str
    severity: str
    code: str
    message: str


@dataclass(frozen=True)
class CeremonySummary:
    """A ceremony's summary row: started (``sealed_at`` None: interrupted or still running) or sealed."""

    ceremony_id: str
    type: str
    file: str
    file_sha256: str
    rehearsal: int
    started_at: str
    sealed_at: str | None
    entries: int | None
    deviations: int | None
    seal_words: str | None
    transcript: str
    transcript_sha256: str | None


class SignedCertificate(NamedTuple):
    """What the certificate pass needs of a certificate (a tuple: it goes to worker processes by the million)."""

    issuer_ca: str
    serial: str
    der: bytes
    profile: str


#: The certificate columns a selection may filter on (the exports' own columns are the frames': ``frames.py``).
FILTER_COLUMNS = tuple(name for name in CERTIFICATE_COLUMNS if name != "der")
assert tuple(f.name for f in fields(CertificateRecord)) == CERTIFICATE_COLUMNS
INSERT_CERTIFICATE = (
    f"INSERT INTO certificates ({', '.join(CERTIFICATE_COLUMNS)}) "  # noqa: S608 - our column names
    f"VALUES ({', '.join('?' for _ in CERTIFICATE_COLUMNS)})"
)
_CA_COLUMNS = ", ".join(f.name for f in fields(CARecord))
_SUCCESSION_COLUMNS = ", ".join(f.name for f in fields(Succession))
_CEREMONY_COLUMNS = ", ".join(f.name for f in fields(CeremonySummary))
_SELECT_CERTIFICATES = f"SELECT {', '.join(CERTIFICATE_COLUMNS)} FROM certificates"  # noqa: S608 - our column names


#: The certificates' columns, in this order: ``frames().certificates`` (``frames.py`` types them), notebook 70's
#: files and ``ceremony inventory export --format csv|parquet``: the certificate table's analyst columns (no DER,
#: no CSR hash, key store or artifact path), then the revocation's time and reason (empty while valid).
CERTIFICATE_FRAME_COLUMNS = (
    "serial", "issuer_ca", "issuer", "subject", "eui64", "role", "usage", "name", "profile", "not_before",
    "not_after", "key_algorithm", "key_size", "signature_algorithm", "policy_oids", "ski", "aki", "fingerprint",
    "status", "approved_by", "batch_id", "ceremony_id", "issued_at", "revoked_at", "revocation_reason",
)  # fmt: skip
#: Where a column comes from when not the certificate row's column of that name.
_FROM_REVOCATION = {"revoked_at": "r.revoked_at", "revocation_reason": "r.reason AS revocation_reason"}
_FRAME_SELECTED = ", ".join(_FROM_REVOCATION.get(c, f"c.{c}") for c in CERTIFICATE_FRAME_COLUMNS)
CERTIFICATE_SELECT = (
    f"SELECT {_FRAME_SELECTED} FROM certificates c "  # noqa: S608 - our column names
    "LEFT JOIN revocations r ON r.issuer_ca = c.issuer_ca AND r.serial = c.serial"
)


def certificate_filter(filters: Mapping[str, str] | None, table: str = "") -> tuple[str, tuple[str, ...]]:
    """A WHERE clause (without the keyword) selecting certificates whose columns equal ``filters``' values;
    ``table``: the certificates' alias in a join (its columns then named ``alias.column``).

    Raises:
        ValueError: a key is not a certificate column (a bug in the caller, never user input).
    """
    chosen = dict(filters or {})
    unknown = sorted(set(chosen) - set(FILTER_COLUMNS))
    if unknown:
        raise ValueError(f"not certificate columns: {', '.join(unknown)}")
    prefix = f"{table}." if table else ""
    return " AND ".join(f"{prefix}{column} = ?" for column in chosen), tuple(chosen.values())


def certificate_rows(inventory: Inventory, filters: Mapping[str, str] | None = None, *, ordered: bool = False) -> Any:
    """The rows of ``CERTIFICATE_FRAME_COLUMNS`` as stored (text, times ISO 8601): a cursor, to stream.
    ``filters``: certificate column -> the value it must equal; ``ordered``: in the order issued (exports)."""
    where, params = certificate_filter(filters, table="c")
    sql = CERTIFICATE_SELECT + (f" WHERE {where}" if where else "")
    return inventory._execute(sql + (" ORDER BY c.issued_at, c.serial" if ordered else ""), params)


def _plain(row: Any) -> dict[str, Any]:
    """A row as a dict, with memoryview (PostgreSQL's BYTEA through some paths) as bytes."""
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}


def _first_line(exc: BaseException) -> str:
    """A driver error's own first line (SQLAlchemy appends the statement and its parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def identity_taken(exc: BaseException) -> bool:
    """Whether a driver's IntegrityError is the one-valid-certificate-per-identity claim refusing a row."""
    return IDENTITY_CLAIMS in str(getattr(exc, "orig", None) or exc)


def database_url(location: Path | str) -> sa.URL:
    """The SQLAlchemy URL of a store: a path is a SQLite file; ``postgresql://`` uses psycopg.

    A password never sits in ``workspace.yaml``: libpq reads it from ~/.pgpass or PGPASSWORD."""
    if isinstance(location, Path) or "://" not in location:
        # SQLite opens whatever stands at the path: a link would be written through, and a device or FIFO
        # read as a database (a traceback, or a hang). Only a regular file, or nothing yet, is an inventory.
        path = Path(location)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ConfigError(f"database: {path} is not a regular file (a SQLite inventory is a plain file)")
        return sa.URL.create("sqlite", database=str(location))
    try:
        url = sa.make_url(location)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database: {location!r} is not a database URL") from exc
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"database: {url.get_backend_name()}:// is not supported (a SQLite path, or postgresql://)")
    if url.password is not None:
        raise ConfigError("database: the URL holds a password; put it in ~/.pgpass or PGPASSWORD instead")
    return url.set(drivername="postgresql+psycopg")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


@lru_cache(maxsize=512)
def _for_psycopg(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (our SQL has no ``?`` inside literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


_CREATE_TABLE = re.compile(r"CREATE TABLE (\w+)")
#: Serialises schema upgrades of a shared PostgreSQL inventory (any constant, the same for every client).
_MIGRATION_LOCK = 0x53315350


class Inventory:
    """The inventory store. One connection per instance, in autocommit; writes go through ``transaction``,
    which takes SQLite's write lock at once (BEGIN IMMEDIATE) and is a plain transaction on PostgreSQL."""

    def __init__(self, location: Path | str) -> None:
        url = database_url(location)
        self.location = url.render_as_string(hide_password=True)
        self.postgres = url.get_backend_name() == "postgresql"
        self.path = Path(str(url.database)) if not self.postgres else None
        engine = sa.create_engine(
            url,
            poolclass=sa.pool.NullPool,
            connect_args={} if self.postgres else {"timeout": 30.0},
        )
        if not self.postgres:
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        self._engine = engine
        try:
            self._db = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.OperationalError as exc:
            raise StateError(f"cannot open the inventory at {self.location}: {_first_line(exc)}") from exc
        self._sql = _for_psycopg if self.postgres else (lambda sql: sql)
        self._begin = "BEGIN" if self.postgres else "BEGIN IMMEDIATE"
        self._migrate()

    def _version(self) -> int:
        if self.postgres:
            self._execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._execute("SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0] or 0) if row else 0
        return int(self._execute("PRAGMA user_version").scalar_one())

    def _ddl(self, statement: str) -> list[str]:
        """A migration statement as this engine takes it (PostgreSQL: BYTEA, and a rowid per table)."""
        if not self.postgres:
            return [statement]
        out = [re.sub(r"\bBLOB\b", "BYTEA", statement)]
        for table in _CREATE_TABLE.findall(statement):
            out.append(f"ALTER TABLE {table} ADD COLUMN rowid BIGINT GENERATED BY DEFAULT AS IDENTITY")
        return out

    def _migrate(self) -> None:
        if self._version() == len(MIGRATIONS):
            return
        with self.transaction() as db:
            if self.postgres:
                db._execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            version = self._version()
            if version > len(MIGRATIONS):
                raise StateError(
                    f"{self.location} has schema version {version}; this tool knows {len(MIGRATIONS)} "
                    "(upgrade the workbench)"
                )
            for number in range(version, len(MIGRATIONS)):
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    for sql in self._ddl(statement):
                        db._execute(sql)
            if self.postgres:
                db._execute("DELETE FROM schema_version")
                db._execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
            else:
                db._execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @property
    def schema_version(self) -> int:
        return self._version()

    def close(self) -> None:
        self._db.close()
        self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Inventory]:
        """BEGIN … COMMIT, rolled back on any error; yields the store, to pass to the named writes."""
        self._db.exec_driver_sql(self._begin)
        try:
            yield self
        except BaseException:
            self._db.exec_driver_sql("ROLLBACK")
            raise
        self._db.exec_driver_sql("COMMIT")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A query written in the record layer (never user text), with ``?`` placeholders; values go in
        ``params``. Returns SQLAlchemy's ``CursorResult`` (typed Any: its rows' arity is the query's),
        whose rows index by position, by attribute, or by name through ``row._mapping``.

        The record layer's own door to SQL (and the tests'): every other layer calls a named query."""
        return self._db.exec_driver_sql(self._sql(sql), tuple(params))

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:  # the rows go to the driver as they are (batch issuance passes thousands of tuples)
            self._db.exec_driver_sql(self._sql(sql), rows if isinstance(rows, list) else list(rows))

    # --- certificates -----------------------------------------------------------------
    def serial_exists(self, issuer_ca: str, serial: str) -> bool:
        row = self._execute(
            "SELECT 1 FROM certificates WHERE issuer_ca = ? AND serial = ?", (issuer_ca, serial)
        ).fetchone()
        return row is not None

    def valid_for_identity(self, issuer_ca: str, profile: str, eui64: str, usage: str, role: str | None) -> list[str]:
        """Serials of valid certificates already issued for (EUI-64, usage[, role]) by this CA."""
        role_is = "role IS NULL" if role is None else "role = ?"
        rows = self._execute(
            "SELECT serial FROM certificates WHERE issuer_ca = ? AND profile = ? AND eui64 = ? "  # noqa: S608
            f"AND usage = ? AND status = 'valid' AND {role_is}",
            (issuer_ca, profile, eui64, usage) + (() if role is None else (role,)),
        ).fetchall()
        return [r[0] for r in rows]

    def add_certificate(self, db: Inventory, record: CertificateRecord, *, claim: str | None = None) -> None:
        """Insert one certificate (``db``: inside a transaction). ``claim``: ``"first"`` claims its identity's
        generation 0 (``IDENTITY_CLAIMS``), ``"next"`` the identity's next one (a re-key, a recovered
        certificate), None nothing (a CA's certificate).

        Raises:
            StateError: the serial or the fingerprint is already on record, or the identity already has a valid
                certificate from this CA key (a run that raced this one won).
        """
        try:
            db._execute(INSERT_CERTIFICATE, tuple(asdict(record).values()))
            params = identity_claim(record, rekey=claim == "next") if claim else None
            if params is not None:
                db._execute(CLAIM_NEXT if claim == "next" else CLAIM_FIRST, params)
        except sa.exc.IntegrityError as exc:
            if identity_taken(exc):
                raise StateError(
                    f"EUI-64 {record.eui64} already has a valid {record.usage} certificate from {record.issuer_ca}"
                    " (recorded by another run meanwhile); nothing was recorded for this one"
                ) from exc
            raise StateError(
                f"certificate {record.serial} from {record.issuer_ca} is already in the inventory"
            ) from exc

    def add_certificate_rows(self, db: Inventory, rows: list[tuple[Any, ...]]) -> None:
        """Insert many rows at once, each a tuple in ``CERTIFICATE_COLUMNS`` order (batch issuance)."""
        try:
            db._executemany(INSERT_CERTIFICATE, rows)
        except sa.exc.IntegrityError as exc:
            raise StateError(f"a certificate of this batch is already in the inventory ({_first_line(exc)})") from exc

    def _certificates(self, tail: str, params: Sequence[Any] = ()) -> list[CertificateRecord]:
        rows = self._execute(f"{_SELECT_CERTIFICATES} {tail}", params)
        return [CertificateRecord(**_plain(r._mapping)) for r in rows]

    def certificates_of_batch(self, batch_id: str) -> list[CertificateRecord]:
        """A batch's certificates, in the order issued."""
        return self._certificates("WHERE batch_id = ? ORDER BY issued_at, serial", (batch_id,))

    def certificate(self, issuer_ca: str, serial: str) -> CertificateRecord | None:
        """The certificate ``serial`` (32 hex digits) of ``issuer_ca``, or None."""
        found = self._certificates("WHERE issuer_ca = ? AND serial = ?", (issuer_ca, serial))
        return found[0] if found else None

    def certificates_with_serial(self, serial: str) -> list[CertificateRecord]:
        """Every certificate with this serial (32 hex digits), whoever issued it, in the order recorded."""
        return self._certificates("WHERE serial = ? ORDER BY rowid", (serial,))

    def certificates_of_device(self, eui64: str) -> list[CertificateRecord]:
        """Every certificate of a device, from any CA, by usage and then in the order issued."""
        return self._certificates("WHERE eui64 = ? ORDER BY usage, issued_at", (eui64,))

    def valid_certificates_of_device(
        self, issuer_ca: str, eui64: str, usage: str | None = None
    ) -> list[CertificateRecord]:
        """The valid certificates ``issuer_ca`` issued to a device (one usage, or both), by usage, then in the
        order recorded."""
        by_usage = "" if usage is None else " AND usage = ?"
        return self._certificates(
            f"WHERE issuer_ca = ? AND eui64 = ? AND status = 'valid'{by_usage} ORDER BY usage, rowid",
            (issuer_ca, eui64) + (() if usage is None else (usage,)),
        )

    def valid_certificates_of_ca(self, issuer_ca: str) -> list[CertificateRecord]:
        """The certificates ``issuer_ca`` issued that are not revoked, in the order issued (what the CA's
        compromise leaves to re-certify; expired ones are the caller's to set aside)."""
        return self._certificates("WHERE issuer_ca = ? AND status = 'valid' ORDER BY issued_at, serial", (issuer_ca,))

    def valid_certificates_of_key(self, ski: str) -> list[CertificateRecord]:
        """The valid certificates of the key with this subject key identifier (a CA's certificate and any
        re-certification or link of its key), in the order recorded."""
        return self._certificates("WHERE ski = ? AND status = 'valid' ORDER BY rowid", (ski,))

    def fingerprints(self) -> set[str]:
        """The SHA-256 fingerprint of every certificate in the inventory."""
        return {row[0] for row in self._execute("SELECT fingerprint FROM certificates")}

    def signed_certificates(self, issuer_cas: Sequence[str]) -> list[SignedCertificate]:
        """Issuer, serial, DER and profile of every certificate these CAs issued, by issuer and serial."""
        if not issuer_cas:
            return []
        marks = ", ".join("?" for _ in issuer_cas)
        rows = self._execute(
            f"SELECT issuer_ca, serial, der, profile FROM certificates WHERE issuer_ca IN ({marks}) "  # noqa: S608
            "ORDER BY issuer_ca, serial",
            tuple(issuer_cas),
        )
        return [SignedCertificate(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def count(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM certificates").scalar_one())

    def add_findings(self, db: Inventory, findings: Sequence[FindingRecord]) -> None:
        """The lint findings of imported certificates, beside them."""
        db._executemany(
            "INSERT INTO findings (fingerprint, severity, code, message) VALUES (?, ?, ?, ?)",
            [(f.fingerprint, f.severity, f.code, f.message) for f in findings],
        )

    def lock_ca(self, db: Inventory, ca_name: str) -> None:
        """Serialise, until ``db``'s transaction ends, what records a CA's certificates and revocations: an
        issuance writes its file inside this lock, so a file with no row is one whose process died, never one
        in flight (SQLite: the transaction's write lock is this lock; PostgreSQL: an advisory lock per CA)."""
        if self.postgres:
            key = int.from_bytes(hashlib.sha256(f"ca:{ca_name}".encode()).digest()[:8], "big", signed=True)
            db._execute("SELECT pg_advisory_xact_lock(CAST(? AS BIGINT))", (key,))

    def recorded_artifacts(self, issuer_ca: str, prefix: str) -> set[str]:
        """The ``artifact`` of every certificate of ``issuer_ca`` whose artifact starts with ``prefix``."""
        rows = self._execute(
            "SELECT artifact FROM certificates WHERE issuer_ca = ? AND substr(artifact, 1, ?) = ?",
            (issuer_ca, len(prefix), prefix),
        )
        return {r[0] for r in rows}

    # --- the CSR archive ----------------------------------------------------------------
    def archive_csrs(self, db: Inventory, ders: Sequence[bytes]) -> list[str]:
        """Archive CSRs (DER) under their SHA-256 (``db``: inside the transaction that records their certificates,
        so that the archive and the certificates agree); a CSR already archived is left as it is. Returns each
        CSR's SHA-256 (hex), in order."""
        digests = [hashlib.sha256(der).hexdigest() for der in ders]
        db._executemany(ARCHIVE_CSR, list(zip(digests, ders, strict=True)))
        return digests

    def archive_csr(self, db: Inventory, der: bytes) -> str:
        """Archive one CSR (see ``archive_csrs``); returns its SHA-256 (hex)."""
        return self.archive_csrs(db, [der])[0]

    def archived_csr(self, sha256: str) -> bytes | str:
        """The archived CSR (DER) whose SHA-256 is ``sha256`` (64 hex digits), or why there is none, in one line:
        none is archived under it, or the bytes stored under it no longer hash to it (altered: never used)."""
        digest = sha256.lower()
        if not _SHA256_HEX.match(digest):
            return "a CSR is archived under its SHA-256: 64 hex digits"
        return self._archived([digest]).get(digest, _NOT_ARCHIVED)

    def _archived(self, digests: Sequence[str]) -> dict[str, bytes | str]:
        """Each archived digest of ``digests`` (lower-case hex) -> its DER, checked against the digest (or why not)."""
        found: dict[str, bytes | str] = {}
        unique = sorted(set(digests))
        for start in range(0, len(unique), _ARCHIVE_LOOKUP):
            part = unique[start : start + _ARCHIVE_LOOKUP]
            marks = ", ".join("?" for _ in part)
            rows = self._execute(f"SELECT sha256, der FROM csrs WHERE sha256 IN ({marks})", part)  # noqa: S608
            for digest, der in rows:
                data = bytes(der)  # PostgreSQL's BYTEA can come back as a memoryview
                found[digest] = data if hashlib.sha256(data).hexdigest() == digest else _ALTERED
        return found

    def recorded_csrs(self, requests: Sequence[tuple[str, str, str]]) -> list[bytes | str]:
        """For each request (EUI-64, usage, CSR SHA-256 hex): the archived CSR (DER) to re-certify that device from,
        or why not, in one line.

        A recorded CSR serves only the identity it was recorded for: the inventory must hold a device certificate
        (no role) of the same EUI-64 and usage issued from it, so that one device's CSR can never be attached to
        another identity's request. Its bytes must hash to the digest (else altered, never used), and no
        certificate of that identity from it may have been revoked for keyCompromise (its key is not certified
        again). Two queries per 500 requests, each by an index (the archive's key; certificates by EUI-64)."""
        out: list[bytes | str] = []
        for start in range(0, len(requests), _ARCHIVE_LOOKUP):
            part = [(e.upper(), u, d.lower()) for e, u, d in requests[start : start + _ARCHIVE_LOOKUP]]
            archived = self._archived([d for _, _, d in part])
            devices = sorted({e for e, _, _ in part})
            marks = ", ".join("?" for _ in devices)
            rows = self._execute(
                "SELECT c.eui64, c.usage, c.csr_sha256, r.reason FROM certificates c LEFT JOIN revocations r "  # noqa: S608
                "ON r.issuer_ca = c.issuer_ca AND r.serial = c.serial "
                f"WHERE c.eui64 IN ({marks}) AND c.role IS NULL AND c.csr_sha256 IS NOT NULL",
                devices,
            )
            recorded: set[tuple[str, str, str]] = set()
            compromised: set[tuple[str, str, str]] = set()
            for eui64, usage, digest, reason in rows:
                recorded.add((eui64, usage, digest))
                if reason == "keyCompromise":
                    compromised.add((eui64, usage, digest))
            for request in part:
                eui64, usage, digest = request
                der = archived.get(digest, _NOT_ARCHIVED)
                if isinstance(der, str):
                    out.append(der)
                elif request not in recorded:
                    out.append(f"this CSR was not recorded for EUI-64 {eui64} {usage} (a recorded CSR serves only "
                               "the identity it was recorded for)")  # fmt: skip
                elif request in compromised:
                    out.append(
                        "a certificate from this CSR was revoked for keyCompromise; its key is not certified again"
                    )
                else:
                    out.append(der)
        return out

    # --- leases -------------------------------------------------------------------------
    @contextmanager
    def lease(self, name: str, *, what: str, now: str) -> Iterator[None]:
        """Hold the lease ``name`` while the block runs: a second holder is refused at once, in one line.

        SQLite (one machine): a row of ``leases`` naming the holder's process; a row whose process is gone from
        this host (killed) is stale and taken over. PostgreSQL (a shared inventory, several machines): a
        session-level advisory lock on this store's connection, which the server drops with the connection,
        so a killed holder never leaves it behind; the row is written too, to say who holds it.

        Raises:
            StateError: another live process holds the lease.
        """
        holder = secrets.token_hex(8)
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        if self.postgres and not self._execute("SELECT pg_try_advisory_lock(CAST(? AS BIGINT))", (key,)).scalar_one():
            held = self._execute("SELECT pid, host, acquired_at FROM leases WHERE name = ?", (name,)).fetchone()
            raise StateError(f"{what} is running in another process{_holder(held)}; wait for it to end, then run again")
        try:
            with self.transaction() as db:
                held = db._execute("SELECT pid, host, acquired_at FROM leases WHERE name = ?", (name,)).fetchone()
                if held is not None and not self.postgres and _alive(int(held[0]), str(held[1])):
                    raise StateError(
                        f"{what} is running in another process{_holder(held)}; wait for it to end, then run again"
                    )
                db._execute("DELETE FROM leases WHERE name = ?", (name,))
                db._execute(
                    "INSERT INTO leases (name, holder, pid, host, acquired_at) VALUES (?, ?, ?, ?, ?)",
                    (name, holder, os.getpid(), socket.gethostname(), now),
                )
            try:
                yield
            finally:
                with self.transaction() as db:
                    db._execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
        finally:
            if self.postgres:
                self._execute("SELECT pg_advisory_unlock(CAST(? AS BIGINT))", (key,))

    # --- ceremonies ---------------------------------------------------------------------
    def record_ceremony_start(self, start: dict[str, Any], *, file: str, transcript: str) -> None:
        """A ceremony on record from its first transcript entry (an unsealed row is an interrupted run)."""
        with self.transaction() as db:
            db._execute(
                "INSERT INTO ceremonies (ceremony_id, type, file, file_sha256, rehearsal, started_at, transcript) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (start["ceremony_id"], start["type"], file, start["file_sha256"], int(bool(start["rehearsal"])),
                 start["time"], transcript),
            )  # fmt: skip

    def record_ceremony_seal(self, ceremony_id: str, entries: list[dict[str, Any]], transcript_sha256: str) -> None:
        """The sealed transcript: the ceremony's summary row, and one row per entry (hash-chained on disk)."""
        seal = entries[-1]
        with self.transaction() as db:
            db._execute(
                "UPDATE ceremonies SET sealed_at = ?, entries = ?, deviations = ?, seal_words = ?, "
                "transcript_sha256 = ? WHERE ceremony_id = ?",
                (seal["time"], len(entries), sum(e["event"] == Event.DEVIATION for e in entries), seal["words"],
                 transcript_sha256, ceremony_id),
            )  # fmt: skip
            db._executemany(
                "INSERT INTO transcript_entries VALUES (?, ?, ?, ?, ?, ?)",
                [(ceremony_id, e["seq"], e["time"], e["event"], e.get("step"), e["hash"]) for e in entries],
            )

    def ceremonies(self) -> list[CeremonySummary]:
        """Every ceremony on record, in the order started."""
        rows = self._execute(f"SELECT {_CEREMONY_COLUMNS} FROM ceremonies ORDER BY rowid")  # noqa: S608
        return [CeremonySummary(**r._mapping) for r in rows]

    def record_key(self, db: Inventory, row: dict[str, Any]) -> None:
        """A key pair now on a token (or in the software store): generated there, or unwrapped from a backup."""
        columns = ", ".join(row)
        try:
            db._execute(
                f"INSERT INTO asymmetric_keys ({columns}, state) VALUES ({', '.join('?' for _ in row)}, 'active')",  # noqa: S608
                tuple(row.values()),
            )
        except sa.exc.IntegrityError as exc:
            raise StateError(f"key {row['label']!r} on {row['token']!r} is already in the key inventory") from exc

    def key_destroyed(self, db: Inventory, token: str, label: str, when: str) -> None:
        db._execute(
            "UPDATE asymmetric_keys SET state = 'destroyed', destroyed_at = ? "
            "WHERE token = ? AND label = ? AND state = 'active'",
            (when, token, label),
        )

    # --- CAs --------------------------------------------------------------------------
    def add_ca(self, db: Inventory, record: CARecord) -> None:
        try:
            db._execute("INSERT INTO cas VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(asdict(record).values()))
        except sa.exc.IntegrityError as exc:
            raise StateError(f"CA {record.name!r} already exists in this workspace") from exc

    def ca(self, name: str) -> CARecord:
        row = self._execute(f"SELECT {_CA_COLUMNS} FROM cas WHERE name = ?", (name,)).fetchone()  # noqa: S608
        if row is None:
            known = ", ".join(self.ca_names()) or "none"
            raise InputError(f"no CA named {name!r} in this workspace (known: {known})")
        return CARecord(**row._mapping)

    def record_succession(self, db: Inventory, succession: Succession) -> None:
        """``succession.successor`` takes over from ``succession.predecessor`` (once: a CA is succeeded once)."""
        try:
            db._execute("INSERT INTO ca_successions VALUES (?, ?, ?, ?, ?)", tuple(asdict(succession).values()))
        except sa.exc.IntegrityError as exc:
            raise StateError(
                f"CA {succession.predecessor!r} already has a successor, or {succession.successor!r} succeeds "
                "another CA"
            ) from exc

    def succession(self, name: str) -> Succession | None:
        """The succession in which CA ``name`` was succeeded (None: it is its line's current generation)."""
        row = self._execute(f"SELECT {_SUCCESSION_COLUMNS} FROM ca_successions WHERE predecessor = ?", (name,))  # noqa: S608
        found = row.fetchone()
        return None if found is None else Succession(**found._mapping)

    def successions(self) -> list[Succession]:
        """Every succession on record, oldest first."""
        rows = self._execute(f"SELECT {_SUCCESSION_COLUMNS} FROM ca_successions ORDER BY succeeded_at")  # noqa: S608
        return [Succession(**r._mapping) for r in rows]

    def ca_names(self) -> list[str]:
        return [r[0] for r in self._execute("SELECT name FROM cas ORDER BY created_at")]

    def ca_certificate_der(self, name: str) -> bytes:
        ca = self.ca(name)
        issuer = ca.issuer_ca or ca.name
        row = self._execute(
            "SELECT der FROM certificates WHERE issuer_ca = ? AND serial = ?", (issuer, ca.serial)
        ).fetchone()
        if row is None:
            raise StateError(f"CA {name!r} has no certificate in the inventory")
        return bytes(row[0])

    # --- export -----------------------------------------------------------------------
    def export_csv(self, out: Path, filters: Mapping[str, str] | None = None) -> int:
        """One row per certificate in the frames' certificate columns (``CERTIFICATE_FRAME_COLUMNS``, revocation
        included), as stored (times ISO 8601), streamed; returns the row count.
        ``filters``: certificate column -> the value it must equal (none: every certificate)."""
        count = 0
        with create(out, what="exports", text=True) as fh:
            writer = csv.writer(fh)
            writer.writerow(CERTIFICATE_FRAME_COLUMNS)
            for row in certificate_rows(self, filters, ordered=True):
                writer.writerow(row)
                count += 1
        return count

    def export_pem(self, out: Path, filters: Mapping[str, str] | None = None) -> int:
        """The certificates themselves, as concatenated PEM, streamed; returns the count (``filters``: as
        ``export_csv``)."""
        where, params = certificate_filter(filters)
        sql = "SELECT der FROM certificates" + (f" WHERE {where}" if where else "")  # noqa: S608
        count = 0
        with create(out, what="exports") as fh:
            for (der,) in self._execute(sql + " ORDER BY issued_at, serial", params):
                fh.write(pem_certificate(bytes(der)))
                count += 1
        return count


#: Why an archived CSR is not given: none under the digest, or bytes that no longer hash to it.
_NOT_ARCHIVED = "no CSR with this SHA-256 is in the inventory's archive"
_ALTERED = "the archived CSR does not match its SHA-256 (altered in the inventory); not used"


def _alive(pid: int, host: str) -> bool:
    """Whether the lease holder's process still runs (one on another host is taken to)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(held: Any) -> str:
    return "" if held is None else f" (process {held[0]} on {held[1]}, since {held[2]})"


def pem_certificate(der: bytes) -> bytes:
    """RFC 7468 PEM: base64 in 64-character lines."""
    import base64

    text = base64.b64encode(der)
    lines = b"\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"


def key_row(
    token: str,
    label: str,
    key: CAPublicKey,
    *,
    key_store: str,
    purpose: str,
    origin: str,
    ceremony_id: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    """The key inventory's row for a key pair now on ``token``."""
    algorithm = key_algorithm_of(key)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "token": token,
        "label": label,
        "key_store": key_store,
        "purpose": purpose,
        "algorithm": algorithm,
        "key_size": key_size_bits(algorithm),
        "spki_sha256": hashlib.sha256(spki).hexdigest(),
        "origin": origin,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "ceremony_id": ceremony_id,
    }
