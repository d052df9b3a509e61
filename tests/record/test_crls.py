"""The CRLs on record, on SQLite and on a real PostgreSQL server: where each CA's sequence stands, and the rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ceremony.record.crls import CRLRecord, LastCRL, add_crl, crls, last_crl
from ceremony.record.inventory import Inventory
from tests.support.records import (
    add_ca,
)


@pytest.fixture
def store(tmp_path: Path, engine_database: str | None) -> Inventory:
    inv = Inventory(engine_database or tmp_path / "inv.sqlite")
    add_ca(inv, "root", role="root", issuer_ca=None)
    add_ca(inv, "issuing")
    yield inv  # type: ignore[misc]
    inv.close()


def _crl(ca: str, number: int, this_update: str, kind: str = "crl") -> CRLRecord:
    return CRLRecord(ca, number, kind, this_update, this_update.replace("T10", "T22"), number - 1, f"{number:064x}",
                     f"artifacts/crls/{ca}-{number}.{kind}")  # fmt: skip


def test_a_ca_without_crls_starts_its_sequence_at_zero(store: Inventory) -> None:
    assert last_crl(store, "issuing") == LastCRL(0, None)
    assert crls(store) == []


def test_the_sequence_stands_at_the_highest_number_and_the_latest_this_update(store: Inventory) -> None:
    one = _crl("issuing", 1, "2026-12-01T10:00:00+00:00")
    two = _crl("issuing", 2, "2026-12-02T10:00:00+00:00")
    # A recovered CRL (crl.py _recover) can carry an earlier thisUpdate than one before it: each is its own maximum.
    three = _crl("issuing", 3, "2026-11-30T10:00:00+00:00")
    arl = _crl("root", 1, "2026-12-05T10:00:00+00:00", kind="arl")
    with store.transaction() as db:
        for record in (one, two, arl, three):
            add_crl(db, record)
    assert last_crl(store, "issuing") == LastCRL(3, "2026-12-02T10:00:00+00:00")
    assert last_crl(store, "root") == LastCRL(1, "2026-12-05T10:00:00+00:00")
    assert crls(store) == [one, two, arl, three]
    assert crls(store, "issuing") == [one, two, three]


def test_a_number_is_used_once_per_ca(store: Inventory) -> None:
    with store.transaction() as db:
        add_crl(db, _crl("issuing", 1, "2026-12-01T10:00:00+00:00"))
    with pytest.raises(sa.exc.IntegrityError):
        with store.transaction() as db:
            add_crl(db, _crl("issuing", 1, "2026-12-02T10:00:00+00:00"))
    assert len(crls(store, "issuing")) == 1
