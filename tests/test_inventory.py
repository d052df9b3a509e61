"""The inventory store: migrations, uniqueness per issuer, CSV export."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from ceremony.errors import StateError
from ceremony.inventory import MIGRATIONS, Inventory
from ceremony.workspace import Workspace


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    inv = Inventory(tmp_path / "inv.sqlite")
    inv.close()
    with sqlite3.connect(tmp_path / "inv.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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
