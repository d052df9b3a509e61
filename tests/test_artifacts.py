"""Artifacts are write-once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ceremony.artifacts import write_once
from ceremony.errors import StateError


def test_write_once_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a" / "cert.pem"
    assert write_once(path, b"one") == hashlib.sha256(b"one").hexdigest()
    with pytest.raises(StateError, match="write-once"):
        write_once(path, b"two")
    assert path.read_bytes() == b"one"
