"""The record layer's tests run on both engines: SQLite and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ceremony.record.inventory import Inventory
from tests.support.postgres import ENGINES, database_for


@pytest.fixture(params=ENGINES)
def engine_database(request: pytest.FixtureRequest) -> str | None:
    """SQLite (None) or a fresh database on the session's PostgreSQL server."""
    return database_for(request)


@pytest.fixture
def store(tmp_path: Path, engine_database: str | None) -> Iterator[Inventory]:
    """An empty inventory on each engine, closed after the test."""
    inv = Inventory(engine_database or tmp_path / "inv.sqlite")
    yield inv
    inv.close()
