"""The inventory store, on SQLite and on a real PostgreSQL server: migrations, uniqueness per issuer,
look-ups, exports, and concurrent writers."""

from __future__ import annotations

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
              "key_wraps", "findings", "ceremonies", "transcript_entries"}  # fmt: skip
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
