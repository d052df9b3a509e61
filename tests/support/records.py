"""Inventory rows made by hand for the record layer's tests: typed records with plausible values, no signing."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from ceremony.record.inventory import CARecord, CertificateRecord, Inventory
from ceremony.record.symmetric_keys import SymmetricKeyRecord

ISSUED_AT = "2026-12-01T10:00:00.000000+00:00"


def certificate(serial: int, *, issuer_ca: str = "issuing", **overrides: Any) -> CertificateRecord:
    """A device certificate row (DS, valid) with serial ``serial`` from ``issuer_ca``; ``overrides`` replace fields."""
    der = b"\x30\x03\x02\x01" + serial.to_bytes(4, "big") + issuer_ca.encode()
    record = CertificateRecord(
        serial=f"{serial:032X}", issuer_ca=issuer_ca, issuer=f"CN={issuer_ca}", subject="", eui64="00DB123400000001",
        role=None, usage="ds", name=None, profile="ss1sp-device", not_before="2026-12-01T10:00:00+00:00",
        not_after="9999-12-31T23:59:59+00:00", key_algorithm="ec-p256", signature_algorithm="ecdsa-with-SHA256",
        policy_oids="1.2.826.0.1.8641679.1.2.1.1", ski="aa" * 20, aki="bb" * 20,
        fingerprint=hashlib.sha256(der).hexdigest(), status="valid", approved_by="alice", csr_sha256=None,
        key_store=None, batch_id=None, ceremony_id=None, issued_at=ISSUED_AT, artifact=None, der=der, key_size=256,
    )  # fmt: skip
    return replace(record, **overrides)


def add_certificates(inventory: Inventory, *records: CertificateRecord) -> None:
    with inventory.transaction() as db:
        for record in records:
            inventory.add_certificate(db, record)


def add_ca(inventory: Inventory, name: str, *, role: str = "issuing", issuer_ca: str | None = "root") -> CARecord:
    ca = CARecord(name, role, f"ss1spca-{role}", "software", f"ca-{name}", issuer_ca, f"{1:032X}", ISSUED_AT)
    with inventory.transaction() as db:
        inventory.add_ca(db, ca)
    return ca


def symmetric_key(label: str, **overrides: Any) -> SymmetricKeyRecord:
    """An active AES-256 data key on token ``s1sp``, exportable; ``overrides`` replace fields."""
    record = SymmetricKeyRecord(
        label=label, token="s1sp", algorithm="aes-256", length=256, kcv="A1B2C3", kcv_method="ecb", purpose="data",
        origin="token", state="active", created_at=ISSUED_AT, activated_at=ISSUED_AT,
        rotation_due="2027-12-01T10:00:00+00:00", expires_at="2028-12-01T10:00:00+00:00", wrapped_by=None,
        predecessor=None, serves="s1sp-dcc", wrapped_export=1, ceremony_id="sym-2026-12",
    )  # fmt: skip
    return replace(record, **overrides)
