"""The inventory store, on SQLite and on a real PostgreSQL server: migrations, uniqueness per issuer,
look-ups, exports, and concurrent writers."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from ceremony.errors import ConfigError, StateError
from ceremony.record.inventory import (
    MIGRATIONS,
    CeremonySummary,
    FindingRecord,
    Inventory,
    SignedCertificate,
    certificate_filter,
)
from ceremony.record.workspace import Workspace
from tests.support.records import add_certificates, certificate


def test_every_migration_runs_and_is_recorded(store: Inventory) -> None:
    assert store.schema_version == len(MIGRATIONS)
    tables = {"cas", "certificates", "batches", "revocations", "crls", "symmetric_keys", "key_custody",
              "key_wraps", "findings", "ceremonies", "transcript_entries", "csrs"}  # fmt: skip
    for table in tables:
        assert store._execute(f"SELECT COUNT(*) FROM {table}").scalar_one() == 0  # noqa: S608
    # Opening again runs nothing (and a second client sees the same version).
    again = Inventory(store.location if store.postgres else store.path)  # type: ignore[arg-type]
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_sqlite_specifics_are_kept(tmp_path: Path) -> None:
    inv = Inventory(tmp_path / "inv.sqlite")
    inv.close()
    with sqlite3.connect(tmp_path / "inv.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_database_url_is_checked_before_use() -> None:
    with pytest.raises(ConfigError, match="holds a password"):
        Inventory("postgresql://alice:secret@127.0.0.1/inventory")
    with pytest.raises(ConfigError, match="mysql:// is not supported"):
        Inventory("mysql://alice@127.0.0.1/inventory")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "inv.sqlite") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="upgrade the workbench"):
        Inventory(tmp_path / "inv.sqlite")


def test_duplicate_serial_per_issuer_is_refused_and_rolled_back(ca_workspace: Workspace) -> None:
    inv = ca_workspace.inventory
    (record,) = [r for r in inv._certificates("", ()) if r.profile == "ss1spca-issuing"]
    before = inv.count()
    with pytest.raises(StateError, match="already in the inventory"):
        with inv.transaction() as db:
            inv.add_certificate(db, replace(record, fingerprint="other"))
    assert inv.count() == before


def test_export_has_no_der_column(ca_workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "inv.csv"
    assert ca_workspace.inventory.export_csv(out) == 2
    header = out.read_text().splitlines()[0].split(",")
    assert "der" not in header and {"serial", "not_after", "fingerprint", "approved_by"} <= set(header)


def _device_estate(store: Inventory) -> dict[str, object]:
    """Two devices' certificates from two CAs (one revoked), inserted out of issuance order."""
    certs = {
        "ds": certificate(1, issued_at="2026-12-01T10:00:01.000000+00:00"),
        "ka": certificate(2, usage="ka", issued_at="2026-12-01T10:00:00.000000+00:00"),
        "ds-again": certificate(3, status="revoked", issued_at="2026-12-01T09:00:00.000000+00:00"),
        "elsewhere": certificate(1, issuer_ca="other", issued_at="2026-12-01T08:00:00.000000+00:00"),
        "second-device": certificate(4, eui64="00DB123400000002"),
    }
    add_certificates(store, *certs.values())
    return certs


def test_certificates_are_found_by_issuer_and_serial_by_serial_and_by_device(store: Inventory) -> None:
    c = _device_estate(store)
    found = store.certificate("issuing", f"{1:032X}")
    assert found == c["ds"] and isinstance(found.der, bytes)  # type: ignore[union-attr]
    assert store.certificate("issuing", f"{9:032X}") is None
    assert store.certificates_with_serial(f"{1:032X}") == [c["ds"], c["elsewhere"]]  # in the order recorded
    assert store.certificates_of_device("00DB123400000001") == [c["elsewhere"], c["ds-again"], c["ds"], c["ka"]]
    assert store.certificates_of_device("00DB123400000009") == []
    assert store.valid_certificates_of_device("issuing", "00DB123400000001") == [c["ds"], c["ka"]]
    assert store.valid_certificates_of_device("issuing", "00DB123400000001", "ka") == [c["ka"]]
    assert store.valid_certificates_of_device("other", "00DB123400000002") == []


def test_a_cas_valid_certificates_are_found_in_the_order_issued(store: Inventory) -> None:
    """What a CA's compromise leaves to re-certify (ceremony.procedures.compromise): not the revoked, not another
    CA's, in issuance order whatever the order recorded."""
    c = _device_estate(store)
    assert store.valid_certificates_of_ca("issuing") == [c["ka"], c["second-device"], c["ds"]]
    assert store.valid_certificates_of_ca("other") == [c["elsewhere"]]
    assert store.valid_certificates_of_ca("nobody") == []


def test_the_certificate_pass_reads_issuer_serial_der_and_profile(store: Inventory) -> None:
    c = _device_estate(store)
    assert store.fingerprints() == {record.fingerprint for record in c.values()}  # type: ignore[attr-defined]
    mine = store.signed_certificates(["issuing"])
    assert [(s.issuer_ca, s.serial) for s in mine] == [("issuing", f"{n:032X}") for n in (1, 2, 3, 4)]
    assert mine[0] == SignedCertificate("issuing", f"{1:032X}", c["ds"].der, "ss1sp-device")  # type: ignore[attr-defined]
    assert isinstance(mine[0].der, bytes)
    assert [s.issuer_ca for s in store.signed_certificates(["other", "issuing"])] == ["issuing"] * 4 + ["other"]
    assert store.signed_certificates([]) == []


def test_findings_of_imported_certificates_are_kept(store: Inventory) -> None:
    findings = [
        FindingRecord("ab" * 32, "WARNING", "profile.device.san_not_critical", "SAN is not critical"),
        FindingRecord("cd" * 32, "ERROR", "profile.ski.length", "subjectKeyIdentifier is 20 octets, not 8"),
    ]
    with store.transaction() as db:
        store.add_findings(db, findings)
        store.add_findings(db, [])
    rows = store._execute("SELECT fingerprint, severity, code, message FROM findings ORDER BY rowid").fetchall()
    assert [FindingRecord(*row) for row in rows] == findings


def test_ceremonies_read_back_started_and_sealed(store: Inventory) -> None:
    start = {"ceremony_id": "root-ca-2026-12", "type": "root-ca", "file_sha256": "ef" * 32, "rehearsal": False,
             "time": "2026-12-01T10:00:00+00:00"}  # fmt: skip
    store.record_ceremony_start(start, file="data/ceremonies/root-ca.yaml", transcript="transcripts/root.jsonl")
    store.record_ceremony_start({**start, "ceremony_id": "issuing-ca-2026-12", "type": "issuing-ca", "rehearsal": True},
                                file="issuing.yaml", transcript="transcripts/issuing.jsonl")  # fmt: skip
    entries = [
        {"seq": 0, "time": start["time"], "event": "start", "hash": "00"},
        {"seq": 1, "time": "2026-12-01T10:05:00+00:00", "event": "deviation", "step": "x", "hash": "01"},
        {"seq": 2, "time": "2026-12-01T11:00:00+00:00", "event": "seal", "words": "w1 w2", "hash": "02"},
    ]
    store.record_ceremony_seal("root-ca-2026-12", entries, "12" * 32)
    assert store.ceremonies() == [
        CeremonySummary("root-ca-2026-12", "root-ca", "data/ceremonies/root-ca.yaml", "ef" * 32, 0,
                        "2026-12-01T10:00:00+00:00", "2026-12-01T11:00:00+00:00", 3, 1, "w1 w2",
                        "transcripts/root.jsonl", "12" * 32),
        CeremonySummary("issuing-ca-2026-12", "issuing-ca", "issuing.yaml", "ef" * 32, 1, "2026-12-01T10:00:00+00:00",
                        None, None, None, None, "transcripts/issuing.jsonl", None),
    ]  # fmt: skip


def test_exports_select_by_column_values(store: Inventory, tmp_path: Path) -> None:
    _device_estate(store)
    assert store.export_csv(tmp_path / "all.csv") == 5
    assert store.export_csv(tmp_path / "other.csv", {"issuer_ca": "other"}) == 1
    assert store.export_pem(tmp_path / "ka.pem", {"issuer_ca": "issuing", "usage": "ka"}) == 1
    assert (tmp_path / "ka.pem").read_bytes().count(b"-----BEGIN CERTIFICATE-----") == 1
    lines = (tmp_path / "other.csv").read_text().splitlines()
    assert len(lines) == 2 and ",other," in lines[1]
    assert certificate_filter({"status": "valid", "eui64": "00DB123400000001"}) == (
        "status = ? AND eui64 = ?", ("valid", "00DB123400000001"),
    )  # fmt: skip
    assert certificate_filter(None) == ("", ())
    with pytest.raises(ValueError, match="not certificate columns: der, nonsense"):
        certificate_filter({"nonsense": "1", "der": "x"})


# --- the CSR archive ---------------------------------------------------------------------------------------------
CSR_A, CSR_B = b"\x30\x03\x02\x01\x0a", b"\x30\x03\x02\x01\x0b"  # stand-ins: the archive keeps bytes, parses none
DIGEST_A, DIGEST_B = hashlib.sha256(CSR_A).hexdigest(), hashlib.sha256(CSR_B).hexdigest()
NOT_ARCHIVED = "no CSR with this SHA-256 is in the inventory's archive"
ALTERED = "the archived CSR does not match its SHA-256 (altered in the inventory); not used"


def test_a_csr_is_archived_once_under_its_sha256_and_read_back(store: Inventory) -> None:
    with store.transaction() as db:
        assert store.archive_csrs(db, [CSR_A, CSR_B, CSR_A]) == [DIGEST_A, DIGEST_B, DIGEST_A]
    with store.transaction() as db:
        assert store.archive_csr(db, CSR_A) == DIGEST_A  # the same CSR again: nothing new
    assert store._execute("SELECT COUNT(*) FROM csrs").scalar_one() == 2
    got = store.archived_csr(DIGEST_A)
    assert got == CSR_A and isinstance(got, bytes)  # bytes on both engines (PostgreSQL's BYTEA too)
    assert store.archived_csr(DIGEST_B.upper()) == CSR_B
    assert store.archived_csr("00" * 32) == NOT_ARCHIVED
    assert store.archived_csr("not-a-digest") == "a CSR is archived under its SHA-256: 64 hex digits"
    # Rolled back with its transaction, as the certificates it goes with.
    with pytest.raises(RuntimeError), store.transaction() as db:
        store.archive_csr(db, b"\x30\x00")
        raise RuntimeError("the chunk failed")
    assert store.archived_csr(hashlib.sha256(b"\x30\x00").hexdigest()) == NOT_ARCHIVED


def test_an_altered_archive_row_is_never_given(store: Inventory) -> None:
    with store.transaction() as db:
        store.archive_csrs(db, [CSR_A, CSR_B])
        db._execute("UPDATE csrs SET der = ? WHERE sha256 = ?", (CSR_B, DIGEST_A))  # someone swapped A's bytes
    assert store.archived_csr(DIGEST_A) == ALTERED
    assert store.archived_csr(DIGEST_B) == CSR_B
    add_certificates(store, certificate(1, csr_sha256=DIGEST_A))
    assert store.recorded_csrs([("00DB123400000001", "ds", DIGEST_A)]) == [ALTERED]
    with store.transaction() as db:
        store.archive_csr(db, CSR_A)  # archiving the true bytes again leaves the row as it is (and still refused)
    assert store.archived_csr(DIGEST_A) == ALTERED


def test_a_recorded_csr_serves_only_the_identity_it_was_recorded_for(store: Inventory) -> None:
    with store.transaction() as db:
        store.archive_csrs(db, [CSR_A, CSR_B])
    add_certificates(
        store,
        certificate(1, csr_sha256=DIGEST_A),  # 00DB123400000001 ds
        certificate(2, eui64="90B3D51F30000001", role="02", name="ORG", csr_sha256=DIGEST_B),  # an organisation's
    )
    other_eui64 = "this CSR was not recorded for EUI-64 00DB123400000002 ds"
    other_usage = "this CSR was not recorded for EUI-64 00DB123400000001 ka"
    got = store.recorded_csrs([
        ("00db123400000001", "ds", DIGEST_A.upper()),  # EUI-64 and digest in either case
        ("00DB123400000002", "ds", DIGEST_A),  # another device
        ("00DB123400000001", "ka", DIGEST_A),  # another usage
        ("90B3D51F30000001", "ds", DIGEST_B),  # an organisation's certificate is no device's
        ("00DB123400000001", "ds", "00" * 32),  # never archived
    ])  # fmt: skip
    assert got[0] == CSR_A
    assert [str(g).split(" (")[0] for g in got[1:4]] == [
        other_eui64,
        other_usage,
        "this CSR was not recorded for EUI-64 90B3D51F30000001 ds",
    ]
    assert got[4] == NOT_ARCHIVED
    assert store.recorded_csrs([]) == []


def test_a_recorded_csr_whose_certificate_was_revoked_for_key_compromise_is_refused(store: Inventory) -> None:
    with store.transaction() as db:
        store.archive_csrs(db, [CSR_A, CSR_B])
    add_certificates(store, certificate(1, csr_sha256=DIGEST_A), certificate(2, usage="ka", csr_sha256=DIGEST_B))
    with store.transaction() as db:
        for serial, reason in ((1, "keyCompromise"), (2, "superseded")):
            db._execute(
                "INSERT INTO revocations VALUES (?, ?, ?, ?, ?, ?)",
                ("issuing", f"{serial:032X}", reason, "2026-12-01T11:00:00+00:00", "bob", "alice"),
            )
    assert store.recorded_csrs([("00DB123400000001", "ds", DIGEST_A), ("00DB123400000001", "ka", DIGEST_B)]) == [
        "a certificate from this CSR was revoked for keyCompromise; its key is not certified again",
        CSR_B,  # superseded: the key was not reported compromised
    ]


def test_many_recorded_csrs_are_looked_up_in_parts(store: Inventory) -> None:
    """More requests than one query takes (500): each still gets its own answer, in order."""
    csrs = [b"\x30\x04" + n.to_bytes(4, "big") for n in range(1203)]
    with store.transaction() as db:
        digests = store.archive_csrs(db, csrs)
    add_certificates(store, *(
        certificate(n + 1, eui64=f"{0x00DB123400000000 + n:016X}", csr_sha256=d, ski=f"{n:040X}")
        for n, d in enumerate(digests)
    ))  # fmt: skip
    requests = [(f"{0x00DB123400000000 + n:016X}", "ds", d) for n, d in enumerate(digests)]
    requests[700] = (requests[701][0], "ds", digests[700])  # one of them asks for its neighbour's CSR
    got = store.recorded_csrs(requests)
    assert got[:700] == csrs[:700] and got[701:] == csrs[701:]
    assert str(got[700]).startswith(f"this CSR was not recorded for EUI-64 {requests[701][0]} ds")


def test_an_inventory_from_before_the_archive_gets_it_on_opening(tmp_path: Path) -> None:
    Inventory(tmp_path / "inv.sqlite").close()
    with sqlite3.connect(tmp_path / "inv.sqlite") as db:
        db.execute("DROP TABLE csrs")
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    upgraded = Inventory(tmp_path / "inv.sqlite")
    try:
        assert upgraded.schema_version == len(MIGRATIONS)
        assert upgraded.archived_csr(DIGEST_A) == NOT_ARCHIVED
    finally:
        upgraded.close()
