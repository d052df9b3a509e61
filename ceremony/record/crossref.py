"""What the cross-checks read of the inventory: every certificate with its artifact and DER, every CA's
certificate and key label, and each batch's rows, as plain tuples (named queries; the record layer's SQL)."""

from __future__ import annotations

from typing import NamedTuple

from ceremony.record.inventory import Inventory


class StoredCertificate(NamedTuple):
    issuer_ca: str
    serial: str
    fingerprint: str
    approved_by: str
    issued_at: str
    not_before: str
    status: str
    batch_id: str | None
    ceremony_id: str | None
    artifact: str | None
    der: bytes


def stored_certificates(inventory: Inventory) -> list[StoredCertificate]:
    """Every certificate row, in the order recorded."""
    rows = inventory._execute(
        "SELECT issuer_ca, serial, fingerprint, approved_by, issued_at, not_before, status, batch_id, ceremony_id, "
        "artifact, der FROM certificates ORDER BY rowid"
    )
    return [StoredCertificate(**{**r._mapping, "der": bytes(r.der)}) for r in rows]


class StoredCA(NamedTuple):
    name: str
    key_label: str
    key_store: str
    issuer_ca: str | None
    serial: str


def stored_cas(inventory: Inventory) -> list[StoredCA]:
    rows = inventory._execute("SELECT name, key_label, key_store, issuer_ca, serial FROM cas ORDER BY created_at")
    return [StoredCA(*r) for r in rows]
