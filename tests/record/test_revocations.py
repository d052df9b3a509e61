"""Revocations on record, on SQLite and on a real PostgreSQL server: the write marks the certificate, the
look-ups give typed records, and a CA's CRL entries come in the order revoked."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ceremony.record.inventory import Inventory
from ceremony.record.revocations import (
    CRLEntry,
    RevocationRecord,
    add_revocation,
    crl_entries,
    revocation,
    revocation_count,
    revocations,
)
from tests.support.records import (
    add_certificates,
    certificate,
)


@pytest.fixture
def store(tmp_path: Path, engine_database: str | None) -> Inventory:
    inv = Inventory(engine_database or tmp_path / "inv.sqlite")
    add_certificates(inv, certificate(1), certificate(2), certificate(3), certificate(1, issuer_ca="other"))
    yield inv  # type: ignore[misc]
    inv.close()


def _revoke(store: Inventory, *records: RevocationRecord) -> None:
    with store.transaction() as db:
        for record in records:
            add_revocation(db, record)


def test_a_revocation_is_recorded_and_marks_its_certificate(store: Inventory) -> None:
    done = RevocationRecord("issuing", f"{2:032X}", "keyCompromise", "2026-12-01T11:00:00+00:00", "bob", "alice")
    _revoke(store, done)
    assert revocation(store, "issuing", f"{2:032X}") == done
    assert revocation(store, "issuing", f"{1:032X}") is None
    assert revocation(store, "other", f"{2:032X}") is None
    statuses = {(c.issuer_ca, c.serial): c.status for c in store._certificates("", ())}
    assert statuses == {("issuing", f"{1:032X}"): "valid", ("issuing", f"{2:032X}"): "revoked",
                        ("issuing", f"{3:032X}"): "valid", ("other", f"{1:032X}"): "valid"}  # fmt: skip


def test_a_failed_revocation_changes_nothing(store: Inventory) -> None:
    record = RevocationRecord("issuing", f"{1:032X}", "superseded", "2026-12-01T11:00:00+00:00", "bob", "bob")
    _revoke(store, record)
    with pytest.raises(sa.exc.IntegrityError):
        _revoke(store, RevocationRecord("issuing", f"{3:032X}", "superseded", record.revoked_at, "bob", "bob"), record)
    assert revocation(store, "issuing", f"{3:032X}") is None
    assert store.certificate("issuing", f"{3:032X}").status == "valid"  # type: ignore[union-attr]


def test_revocations_and_crl_entries_come_in_the_order_revoked(store: Inventory) -> None:
    first = RevocationRecord("issuing", f"{3:032X}", "superseded", "2026-12-01T11:00:00+00:00", "bob", "alice")
    second = RevocationRecord("other", f"{1:032X}", "keyCompromise", "2026-12-01T11:30:00+00:00", "bob", "alice")
    third = RevocationRecord("issuing", f"{1:032X}", "keyCompromise", "2026-12-01T12:00:00+00:00", "carol", "alice")
    _revoke(store, first, second, third)
    assert revocations(store) == [first, second, third]
    assert list(crl_entries(store, "issuing")) == [
        CRLEntry(f"{3:032X}", "2026-12-01T11:00:00+00:00", "superseded"),
        CRLEntry(f"{1:032X}", "2026-12-01T12:00:00+00:00", "keyCompromise"),
    ]
    assert [entry.serial for entry in crl_entries(store, "other")] == [f"{1:032X}"]
    assert list(crl_entries(store, "root")) == []
    assert (revocation_count(store, "issuing"), revocation_count(store, "other"), revocation_count(store, "root")) == (
        2, 1, 0,
    )  # fmt: skip
