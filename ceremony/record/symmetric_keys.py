"""The symmetric key inventory: the keys (``symmetric_keys``), who holds which component (``key_custody``), and
which key travelled under which KEK (``key_wraps``, the wrapping lineage)."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from ceremony.record.inventory import Inventory


@dataclass(frozen=True)
class SymmetricKeyRecord:
    """One symmetric key on a token: its check value, crypto-period, lineage and state (never the key)."""

    label: str
    token: str
    algorithm: str
    #: Bits.
    length: int
    kcv: str
    kcv_method: str
    purpose: str
    #: components | token | unwrapped
    origin: str
    #: pre-active | active | suspended | deactivated | compromised | destroyed
    state: str
    created_at: str
    activated_at: str | None
    rotation_due: str
    expires_at: str
    #: The KEK it was unwrapped under (an imported key).
    wrapped_by: str | None
    #: The key it succeeds (a rotation).
    predecessor: str | None
    serves: str
    #: 1 when the key may leave the token wrapped under a KEK.
    wrapped_export: int
    ceremony_id: str | None


@dataclass(frozen=True)
class CustodyRecord:
    """One component of a split-knowledge key: its custodian, its KCV, and the tamper-evident bag it travelled in."""

    key_label: str
    component: int
    custodian: str
    kcv: str
    bag_sealed: str | None
    bag_unsealed: str | None
    ceremony_id: str


@dataclass(frozen=True)
class KeyWrapRecord:
    """One wrap or unwrap of ``key_label`` under ``kek_label``: an export, an import or a re-wrap."""

    key_label: str
    kek_label: str
    #: export | import | rewrap
    direction: str
    kcv: str
    kek_kcv: str
    file: str | None
    file_sha256: str | None
    at: str
    ceremony_id: str | None = None


def _insert(table: str, record: type) -> str:
    names = [f.name for f in fields(record)]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"  # noqa: S608


_KEY_COLUMNS = ", ".join(f.name for f in fields(SymmetricKeyRecord))
_CUSTODY_COLUMNS = ", ".join(f.name for f in fields(CustodyRecord))
_INSERT_KEY = _insert("symmetric_keys", SymmetricKeyRecord)
_INSERT_CUSTODY = _insert("key_custody", CustodyRecord)
_INSERT_WRAP = _insert("key_wraps", KeyWrapRecord)


# --- keys ------------------------------------------------------------------------------------
def add_symmetric_key(db: Inventory, record: SymmetricKeyRecord) -> None:
    """Enter a key in the key inventory (inside ``db``'s transaction)."""
    db._execute(_INSERT_KEY, astuple(record))


def symmetric_key(inventory: Inventory, label: str) -> SymmetricKeyRecord | None:
    """The key labelled ``label``, or None."""
    row = inventory._execute(f"SELECT {_KEY_COLUMNS} FROM symmetric_keys WHERE label = ?", (label,)).fetchone()  # noqa: S608
    return None if row is None else SymmetricKeyRecord(**row._mapping)


def symmetric_keys(inventory: Inventory) -> list[SymmetricKeyRecord]:
    """Every key, in the order created (then by label)."""
    rows = inventory._execute(f"SELECT {_KEY_COLUMNS} FROM symmetric_keys ORDER BY created_at, label")  # noqa: S608
    return [SymmetricKeyRecord(**r._mapping) for r in rows]


def deactivate_symmetric_key(db: Inventory, label: str) -> None:
    """Mark a key deactivated (its successor has taken over; inside ``db``'s transaction)."""
    db._execute("UPDATE symmetric_keys SET state = 'deactivated' WHERE label = ?", (label,))


# --- custody ---------------------------------------------------------------------------------
def add_custody(db: Inventory, record: CustodyRecord) -> None:
    """Record who holds one component of a key (inside ``db``'s transaction)."""
    db._execute(_INSERT_CUSTODY, astuple(record))


def custody(inventory: Inventory) -> list[CustodyRecord]:
    """Every component on record, by key and component number."""
    rows = inventory._execute(f"SELECT {_CUSTODY_COLUMNS} FROM key_custody ORDER BY key_label, component")  # noqa: S608
    return [CustodyRecord(**r._mapping) for r in rows]


# --- wrapping lineage ------------------------------------------------------------------------
def add_key_wrap(db: Inventory, record: KeyWrapRecord) -> None:
    """Record one wrap or unwrap in the lineage (inside ``db``'s transaction)."""
    db._execute(_INSERT_WRAP, astuple(record))


def keys_wrapped_under(inventory: Inventory, kek_label: str) -> list[str]:
    """Labels of the active, exportable keys ever exported or re-wrapped under ``kek_label``, sorted: what a
    rotation of that KEK must re-wrap under its successor."""
    rows = inventory._execute(
        "SELECT DISTINCT w.key_label FROM key_wraps w JOIN symmetric_keys k ON k.label = w.key_label "
        "WHERE w.kek_label = ? AND w.direction IN ('export', 'rewrap') AND k.state = 'active' "
        "AND k.wrapped_export = 1 ORDER BY w.key_label",
        (kek_label,),
    )
    return [r[0] for r in rows]
