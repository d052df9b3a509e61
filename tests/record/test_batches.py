"""The batch's named queries (``ceremony.record.batches``) on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import StateError
from ceremony.model.profiles import get_profile
from ceremony.record import batches
from ceremony.record.batches import BatchCertificateRow, BatchRecord, SignedInBatch
from ceremony.record.inventory import CARecord, CertificateRecord, Inventory

CREATED = "2026-12-01T10:00:00.000000+00:00"
RECORD_COLUMNS = tuple(f.name for f in fields(CertificateRecord))


@pytest.fixture
def store(tmp_path: Path, engine_database: str | None) -> Iterator[Inventory]:
    inv = Inventory(engine_database or tmp_path / "inv.sqlite")
    with inv.transaction() as db:
        inv.add_ca(db, CARecord("issuing", "issuing", "ss1spca-issuing", "software", "ca-issuing", None, "01", CREATED))
    yield inv
    inv.close()


def _issuer() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Issuing")])
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(1).not_valid_before(start).not_valid_after(start + timedelta(days=3650))
    return builder.sign(key, hashes.SHA256())


def _signed(n: int, ka: bool = False) -> SignedInBatch:
    der = b"\x30\x04" + n.to_bytes(4, "big")  # stands in for the certificate: the rows hash it, nothing parses it
    return SignedInBatch(
        serial=(0x10 << 120 | n).to_bytes(16, "big"), not_before=b"261201100000Z", der=der, ski=bytes([n]) * 8,
        eui64=(0x00DB123400000000 + n).to_bytes(8, "big"), ka=ka, csr_sha256=hashlib.sha256(der).digest(),
    )  # fmt: skip


def _rows(batch_id: str, issuer: x509.Certificate) -> Callable[[SignedInBatch, str], BatchCertificateRow]:
    return batches.certificate_rows(
        profile=get_profile("ss1sp-device", {}), issuer_ca="issuing", profile_name="ss1sp-device", approved_by="bob",
        issuer_cert=issuer, batch_id=batch_id,
    )  # fmt: skip


def _record(mapping: Any) -> CertificateRecord:
    values: dict[str, Any] = {k: bytes(v) if isinstance(v, memoryview) else v for k, v in mapping.items()}
    return CertificateRecord(**values)


def _open(store: Inventory, batch_id: str, rekey: bool = False) -> None:
    with store.transaction() as db:
        batches.open_batch(
            db, batch_id=batch_id, issuer_ca="issuing", profile="ss1sp-device", list_sha256="ab" * 32,
            approved_by="bob", rekey=rekey, requested=3, created_at=CREATED,
        )  # fmt: skip


def test_a_batch_row_names_the_inventorys_certificate_columns_in_their_order(store: Inventory) -> None:
    table = [c for c in store._execute("SELECT * FROM certificates WHERE 1 = 0").keys() if c != "rowid"]
    assert BatchCertificateRow._fields == RECORD_COLUMNS == tuple(table)
    assert batches.INSERT_BATCH_CERTIFICATE.startswith(f"INSERT INTO certificates ({', '.join(RECORD_COLUMNS)}) ")


def test_signed_certificates_are_recorded_as_the_inventory_reads_them(store: Inventory) -> None:
    issuer = _issuer()
    row = _rows("b-one", issuer)
    _open(store, "b-one")
    signed = [_signed(1), _signed(2, ka=True), _signed(3)]
    with store.transaction() as db:
        batches.record_signed(db, [row(s, CREATED) for s in signed], csrs=[s.der for s in signed])
    read = store._execute(f"SELECT {', '.join(RECORD_COLUMNS)} FROM certificates ORDER BY rowid").fetchall()
    records = [_record(r._mapping) for r in read]
    first = records[0]
    assert first.serial == "10000000000000000000000000000001" and first.eui64 == "00DB123400000001"
    assert (first.usage, records[1].usage) == ("ds", "ka")
    assert first.issuer == "CN=Issuing" and first.subject == "" and first.profile == "ss1sp-device"
    assert first.not_before == "2026-12-01T10:00:00+00:00" and first.not_after == "9999-12-31T23:59:59+00:00"
    assert (first.key_algorithm, first.signature_algorithm, first.key_size) == ("ec-p256", "ecdsa-with-SHA256", 256)
    assert first.ski == "01" * 8 and first.fingerprint == hashlib.sha256(signed[0].der).hexdigest()
    assert first.csr_sha256 == signed[0].csr_sha256.hex() and first.status == "valid" and first.approved_by == "bob"
    assert (first.batch_id, first.artifact, first.issued_at) == ("b-one", "artifacts/batches/b-one.pem", CREATED)
    assert first.der == signed[0].der
    assert [r for r in records] == [CertificateRecord(*row(s, CREATED)) for s in signed]
    assert list(batches.issued_serials(store, "b-one")) == [r.serial for r in records]
    assert list(batches.issued_certificates(store, "b-one")) == [s.der for s in signed]
    assert sorted(tuple(i) for i in batches.issued_identities(store, "b-one")) == sorted(
        (r.eui64, r.usage) for r in records
    )
    assert batches.issued_count(store, "b-one") == 3 and batches.issued_count(store, "b-two") == 0


def test_a_certificate_recorded_twice_is_refused_and_nothing_of_its_chunk_kept(store: Inventory) -> None:
    row = _rows("b-one", _issuer())
    _open(store, "b-one")
    with store.transaction() as db:
        batches.record_signed(db, [row(_signed(1), CREATED)], csrs=[_signed(1).der])
    with pytest.raises(StateError, match="a certificate of this batch is already in the inventory"):
        with store.transaction() as db:
            batches.record_signed(db, [row(_signed(2), CREATED), row(_signed(1), CREATED)],
                                  csrs=[_signed(2).der, _signed(1).der])  # fmt: skip
    assert batches.issued_count(store, "b-one") == 1
    assert store._execute("SELECT COUNT(*) FROM csrs").scalar_one() == 1  # chunk 2's CSRs went with it


def test_a_chunk_archives_the_csr_of_each_certificate_in_its_transaction(store: Inventory) -> None:
    """The stand-in certificates of ``_signed`` name the SHA-256 of their own bytes as their CSR's, so those bytes
    stand in for the CSRs too."""
    row = _rows("b-one", _issuer())
    _open(store, "b-one")
    signed = [_signed(1), _signed(2, ka=True)]
    with store.transaction() as db:
        batches.record_signed(db, [row(s, CREATED) for s in signed], csrs=[s.der for s in signed])
    for s in signed:
        assert store.archived_csr(s.csr_sha256.hex()) == s.der
    # A CSR that is not the one its row names (out of step), or one missing, refuses the whole chunk.
    for csrs in ([_signed(4).der, _signed(3).der], [_signed(3).der]):
        with pytest.raises(StateError, match="a CSR of this chunk is not the one its certificate was issued from"):
            with store.transaction() as db:
                batches.record_signed(db, [row(_signed(3), CREATED), row(_signed(4), CREATED)], csrs=csrs)
    assert batches.issued_count(store, "b-one") == 2
    assert store._execute("SELECT COUNT(*) FROM csrs").scalar_one() == 2


def test_a_batch_opens_then_completes_with_its_bundle(store: Inventory) -> None:
    assert batches.find_batch(store, "b-one") is None
    _open(store, "b-one", rekey=True)
    opened = batches.find_batch(store, "b-one")
    assert opened == BatchRecord(
        "b-one", "issuing", "ss1sp-device", "ab" * 32, "bob", True, 3, "open", None, None, CREATED, None
    )
    with store.transaction() as db:
        batches.complete_batch(db, "b-one", bundle="artifacts/batches/b-one.pem", bundle_sha256="cd" * 32,
                               completed_at="2026-12-01T10:05:00+00:00")  # fmt: skip
    done = batches.find_batch(store, "b-one")
    assert done is not None and (done.status, done.bundle, done.bundle_sha256, done.completed_at) == (
        "complete",
        "artifacts/batches/b-one.pem",
        "cd" * 32,
        "2026-12-01T10:05:00+00:00",
    )


def test_valid_identities_leave_out_the_batch_asking_and_revoked_certificates(store: Inventory) -> None:
    issuer = _issuer()
    for batch_id, signed in (("b-one", [_signed(1), _signed(2)]), ("b-two", [_signed(3)])):
        _open(store, batch_id)
        row = _rows(batch_id, issuer)
        with store.transaction() as db:
            batches.record_signed(db, [row(s, CREATED) for s in signed], csrs=[s.der for s in signed])
    with store.transaction() as db:
        db._execute("UPDATE certificates SET status = 'revoked' WHERE eui64 = '00DB123400000002'")
    valid = {tuple(i) for i in batches.valid_identities(store, "issuing", "ss1sp-device", outside="b-two")}
    assert valid == {("00DB123400000001", "ds")}
    assert {tuple(i) for i in batches.valid_identities(store, "issuing", "other-profile", outside="b-two")} == set()
    assert {tuple(i) for i in batches.valid_identities(store, "root", "ss1sp-device", outside="b-one")} == set()
