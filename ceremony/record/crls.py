"""The CRLs and ARLs on record: one row per one published, numbered per CA (``crls`` table)."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from ceremony.record.inventory import Inventory


@dataclass(frozen=True)
class CRLRecord:
    """One published CRL (an issuing CA's) or ARL (the root's), as recorded."""

    issuer_ca: str
    number: int
    kind: str
    this_update: str
    next_update: str
    entries: int
    sha256: str
    artifact: str


@dataclass(frozen=True)
class LastCRL:
    """Where a CA's CRL sequence stands: the highest number on record (0: none yet) and the latest thisUpdate."""

    number: int
    this_update: str | None


_COLUMNS = ", ".join(f.name for f in fields(CRLRecord))
_INSERT = f"INSERT INTO crls ({_COLUMNS}) VALUES ({', '.join('?' for _ in fields(CRLRecord))})"  # noqa: S608


def add_crl(db: Inventory, record: CRLRecord) -> None:
    """Record a CRL (inside ``db``'s transaction); a number a CA already used is refused by the key."""
    db._execute(_INSERT, astuple(record))


def last_crl(inventory: Inventory, issuer_ca: str) -> LastCRL:
    """The highest CRL number and the latest thisUpdate on record for ``issuer_ca`` (each its own maximum)."""
    number, this_update = inventory._execute(
        "SELECT MAX(number), MAX(this_update) FROM crls WHERE issuer_ca = ?", (issuer_ca,)
    ).fetchone()
    return LastCRL(int(number or 0), this_update)


def crls(inventory: Inventory, issuer_ca: str | None = None) -> list[CRLRecord]:
    """The CRLs on record (of one CA, or all), in the order recorded."""
    where, params = ("WHERE issuer_ca = ? ", (issuer_ca,)) if issuer_ca is not None else ("", ())
    rows = inventory._execute(f"SELECT {_COLUMNS} FROM crls {where}ORDER BY rowid", params)  # noqa: S608
    return [CRLRecord(**r._mapping) for r in rows]
