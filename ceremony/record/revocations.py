"""Revocations on record (``revocations`` table): who asked, who approved, why, when; the CRL entries they become."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple, dataclass, fields
from typing import NamedTuple

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
    """Record a revocation and mark the certificate revoked (inside ``db``'s transaction)."""
    db._execute(_INSERT, astuple(record))
    db._execute(
        "UPDATE certificates SET status = 'revoked' WHERE issuer_ca = ? AND serial = ?",
        (record.issuer_ca, record.serial),
    )


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
