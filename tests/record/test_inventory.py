"""The inventory store, on SQLite and on a real PostgreSQL server: migrations, uniqueness per issuer,
look-ups, exports, and concurrent writers."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from ceremony.errors import ConfigError, StateError
from ceremony.record.inventory import MIGRATIONS, Inventory
from ceremony.record.workspace import Workspace
from tests.support.postgres import ENGINES, database_for


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest) -> str | None:
    return database_for(request)


@pytest.fixture
def store(tmp_path: Path, database: str | None) -> Inventory:
    inv = Inventory(database or tmp_path / "inv.sqlite")
    yield inv  # type: ignore[misc]
    inv.close()


def test_every_migration_runs_and_is_recorded(store: Inventory) -> None:
    assert store.schema_version == len(MIGRATIONS)
    tables = {"cas", "certificates", "batches", "revocations", "crls", "symmetric_keys", "key_custody",
              "key_wraps", "findings", "ceremonies", "transcript_entries"}  # fmt: skip
    for table in tables:
        assert store.execute(f"SELECT COUNT(*) FROM {table}").scalar_one() == 0  # noqa: S608
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
    (record,) = inv.certificates("profile = ?", ("ss1spca-issuing",))
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
