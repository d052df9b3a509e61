"""Revocations on record (``revocations`` table): who asked, who approved, why, when; the CRL entries they become."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from ceremony.errors import StateError
from ceremony.model.events import Event
from ceremony.record.inventory import Inventory


@dataclass(frozen=True)
class RevocationRecord:
    """One revoked certificate: the revocation request, its approval and its RFC 5280 reason."""

    issuer_ca: str
    serial: str
    reason: str
    revoked_at: str
    requested_by: str
    approved_by: str


class CRLEntry(NamedTuple):
    """A revoked certificate as its CRL lists it (a tuple: a CRL can hold a hundred thousand)."""

    serial: str
    revoked_at: str
    reason: str


_COLUMNS = ", ".join(f.name for f in fields(RevocationRecord))
_INSERT = f"INSERT INTO revocations ({_COLUMNS}) VALUES ({', '.join('?' for _ in fields(RevocationRecord))})"  # noqa: S608


def add_revocation(db: Inventory, record: RevocationRecord) -> None:
    """Record a revocation and mark the certificate revoked (inside ``db``'s transaction; a revocation
    already on record is the driver's IntegrityError: callers claim the certificate first, ``claim_valid``)."""
    db._execute(_INSERT, astuple(record))
    db._execute(
        "UPDATE certificates SET status = 'revoked' WHERE issuer_ca = ? AND serial = ?",
        (record.issuer_ca, record.serial),
    )
    # The identity is free again (ceremony.record.inventory.IDENTITY_CLAIMS).
    db._execute("DELETE FROM valid_identities WHERE issuer_ca = ? AND serial = ?", (record.issuer_ca, record.serial))


def claim_valid(db: Inventory, issuer_ca: str, serial: str) -> None:
    """Claim a valid certificate for its revocation (valid to revoked, in one UPDATE, inside ``db``'s
    transaction). Of two processes revoking one serial at once, the second waits for the first's commit
    (SQLite's write lock; PostgreSQL's row lock, after which the row is read again), finds the certificate
    revoked and is refused in one line, never with the driver's IntegrityError.

    Raises:
        StateError: the certificate is not valid (any more): already revoked, by this run or another.
    """
    claimed = db._execute(
        "UPDATE certificates SET status = 'revoked' WHERE issuer_ca = ? AND serial = ? AND status = 'valid'",
        (issuer_ca, serial),
    )
    if claimed.rowcount != 1:
        row = db._execute(
            "SELECT status FROM certificates WHERE issuer_ca = ? AND serial = ?", (issuer_ca, serial)
        ).fetchone()
        status = "not in the inventory" if row is None else f"already {row[0]}"
        raise StateError(f"certificate {serial} from {issuer_ca} is {status}")


def restore_revocation(db: Inventory, record: RevocationRecord) -> bool:
    """Apply a journalled revocation the inventory lacks (``db``: inside a transaction, under the CA's lock);
    True when it is on record now (applied, or committed meanwhile by its own process), False when the
    inventory holds no such certificate."""
    row = db._execute(
        "SELECT status FROM certificates WHERE issuer_ca = ? AND serial = ?", (record.issuer_ca, record.serial)
    ).fetchone()
    if row is None:
        return False
    if revocation(db, record.issuer_ca, record.serial) is None:
        add_revocation(db, record)
    return True


def journalled_revocations(journal: Path, issuer_ca: str) -> list[dict[str, Any]]:
    """The operations journal's revocation entries of ``issuer_ca``, in order (only lines naming the event are
    parsed: the journal holds a line per certificate issued)."""
    if not journal.is_file():
        return []
    marker = f'"event":"{Event.CERTIFICATE_REVOKE.value}"'.encode()  # entries are canonical JSON: no spaces
    found = []
    with journal.open("rb") as fh:
        for line in fh:
            if marker in line:
                entry = json.loads(line)
                if entry.get("event") == Event.CERTIFICATE_REVOKE and entry.get("ca") == issuer_ca:
                    found.append(entry)
    return found


def revoked_serials(inventory: Inventory, issuer_ca: str) -> set[str]:
    """The serials of ``issuer_ca``'s revoked certificates."""
    rows = inventory._execute("SELECT serial FROM revocations WHERE issuer_ca = ?", (issuer_ca,))
    return {r[0] for r in rows}


def revocation(inventory: Inventory, issuer_ca: str, serial: str) -> RevocationRecord | None:
    """The revocation of certificate ``serial`` of ``issuer_ca``, or None when it is not revoked."""
    row = inventory._execute(
        f"SELECT {_COLUMNS} FROM revocations WHERE issuer_ca = ? AND serial = ?",  # noqa: S608
        (issuer_ca, serial),
    ).fetchone()
    return None if row is None else RevocationRecord(**row._mapping)


def revocations(inventory: Inventory) -> list[RevocationRecord]:
    """Every revocation on record, in the order recorded."""
    rows = inventory._execute(f"SELECT {_COLUMNS} FROM revocations ORDER BY rowid")  # noqa: S608
    return [RevocationRecord(**r._mapping) for r in rows]


def revocation_count(inventory: Inventory, issuer_ca: str) -> int:
    """How many certificates of ``issuer_ca`` are revoked."""
    return int(inventory._execute("SELECT COUNT(*) FROM revocations WHERE issuer_ca = ?", (issuer_ca,)).scalar_one())


def crl_entries(inventory: Inventory, issuer_ca: str) -> Iterator[CRLEntry]:
    """The revoked certificates of ``issuer_ca`` that are in the inventory, in the order revoked (streamed)."""
    rows = inventory._execute(
        "SELECT r.serial, r.revoked_at, r.reason FROM revocations r JOIN certificates c "
        "ON c.issuer_ca = r.issuer_ca AND c.serial = r.serial WHERE r.issuer_ca = ? ORDER BY r.rowid",
        (issuer_ca,),
    )
    for serial, revoked_at, reason in rows:
        yield CRLEntry(serial, revoked_at, reason)
