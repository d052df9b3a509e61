"""The symmetric key inventory, on SQLite and on a real PostgreSQL server: keys, custody and the wrapping
lineage written and read back as typed records."""

from __future__ import annotations

from dataclasses import replace

from ceremony.record.inventory import Inventory
from ceremony.record.symmetric_keys import (
    CustodyRecord,
    KeyWrapRecord,
    add_custody,
    add_key_wrap,
    add_symmetric_key,
    custody,
    deactivate_symmetric_key,
    keys_wrapped_under,
    symmetric_key,
    symmetric_keys,
)
from tests.support.records import symmetric_key as key_record


def test_a_key_reads_back_as_written(store: Inventory) -> None:
    kek = key_record("s1sp-kek", purpose="kek", origin="components", wrapped_export=0)
    imported = key_record("s1sp-dmk-1", origin="unwrapped", wrapped_by="s1sp-kek", kcv_method="cmac",
                          created_at="2026-11-30T10:00:00+00:00", ceremony_id=None)  # fmt: skip
    with store.transaction() as db:
        add_symmetric_key(db, kek)
        add_symmetric_key(db, imported)
    assert symmetric_key(store, "s1sp-kek") == kek
    assert symmetric_key(store, "s1sp-dmk-1") == imported
    assert symmetric_key(store, "nothing") is None
    assert symmetric_keys(store) == [imported, kek]  # by creation time, then label


def test_a_deactivated_key_stays_on_record(store: Inventory) -> None:
    with store.transaction() as db:
        add_symmetric_key(db, key_record("old"))
        add_symmetric_key(db, key_record("new", predecessor="old"))
    with store.transaction() as db:
        deactivate_symmetric_key(db, "old")
    assert [(k.label, k.state, k.predecessor) for k in symmetric_keys(store)] == [
        ("new", "active", "old"),
        ("old", "deactivated", None),
    ]


def test_custody_reads_by_key_and_component(store: Inventory) -> None:
    rows = [
        CustodyRecord("s1sp-kek", 2, "carol", "C2C2C2", "BAG-2", "BAG-2", "sym-2026-12"),
        CustodyRecord("s1sp-kek", 1, "bob", "B1B1B1", "BAG-1", "BAG-9", "sym-2026-12"),
        CustodyRecord("s1sp-aaa", 1, "dave", "D1D1D1", None, None, "sym-2026-12"),
    ]
    with store.transaction() as db:
        add_symmetric_key(db, key_record("s1sp-kek", purpose="kek"))
        add_symmetric_key(db, key_record("s1sp-aaa"))
        for row in rows:
            add_custody(db, row)
    assert custody(store) == [rows[2], rows[1], rows[0]]


def test_a_rotation_rewraps_the_active_exportable_keys_wrapped_under_the_kek(store: Inventory) -> None:
    def wrap(key: str, direction: str, kek: str = "kek") -> KeyWrapRecord:
        return KeyWrapRecord(key, kek, direction, "K", "KK", f"{key}.json", "00" * 32, "2026-12-01T11:00:00+00:00")

    with store.transaction() as db:
        add_symmetric_key(db, key_record("kek", purpose="kek"))
        add_symmetric_key(db, key_record("other-kek", purpose="kek"))
        for label in ("b-exported", "a-rewrapped", "c-imported", "d-retired", "e-not-exportable", "f-elsewhere"):
            add_symmetric_key(db, key_record(label))
        for row in (wrap("b-exported", "export"), wrap("b-exported", "export"), wrap("a-rewrapped", "rewrap"),
                    wrap("c-imported", "import"), wrap("d-retired", "export"), wrap("e-not-exportable", "export"),
                    wrap("f-elsewhere", "export", kek="other-kek")):  # fmt: skip
            add_key_wrap(db, replace(row, ceremony_id="rot-2027-12") if row.direction == "rewrap" else row)
    with store.transaction() as db:
        deactivate_symmetric_key(db, "d-retired")
        db._execute("UPDATE symmetric_keys SET wrapped_export = 0 WHERE label = 'e-not-exportable'")
    assert keys_wrapped_under(store, "kek") == ["a-rewrapped", "b-exported"]
    assert keys_wrapped_under(store, "other-kek") == ["f-elsewhere"]
    assert keys_wrapped_under(store, "nothing") == []
    stored = store._execute("SELECT key_label, direction, ceremony_id FROM key_wraps ORDER BY rowid").fetchall()
    assert [tuple(r) for r in stored][:3] == [("b-exported", "export", None), ("b-exported", "export", None),
                                              ("a-rewrapped", "rewrap", "rot-2027-12")]  # fmt: skip
