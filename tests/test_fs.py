"""The file primitive: write-once, no-follow, owner-only secrets, bounded reads of regular files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ceremony.errors import StateError
from ceremony.fs import write_once


def test_write_once_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a" / "cert.pem"
    assert write_once(path, b"one") == hashlib.sha256(b"one").hexdigest()
    with pytest.raises(StateError, match="write-once"):
        write_once(path, b"two")
    assert path.read_bytes() == b"one"


def test_write_once_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_bytes(b"untouched")
    link = tmp_path / "cert.pem"
    link.symlink_to(target)
    with pytest.raises(StateError):
        write_once(link, b"planted")
    assert target.read_bytes() == b"untouched"


def test_write_private_is_owner_only(tmp_path: Path) -> None:
    from ceremony.fs import write_private

    path = write_private(tmp_path / "card.txt", "words")
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "symlink", "too-large"])
def test_read_regular_refuses_what_is_not_a_small_regular_file(tmp_path: Path, kind: str) -> None:
    import os

    from ceremony.errors import InputError
    from ceremony.fs import read_regular

    path = tmp_path / "input"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "real").write_bytes(b"x")
        path.symlink_to(tmp_path / "real")
    elif kind == "too-large":
        path.write_bytes(b"x" * 11)
    with pytest.raises(InputError, match="input"):
        read_regular(path, 10, "input file")
    (tmp_path / "ok").write_bytes(b"0123456789")
    assert read_regular(tmp_path / "ok", 10, "input file") == b"0123456789"


def test_create_streams_into_a_new_file_only(tmp_path: Path) -> None:
    from ceremony.fs import create

    with create(tmp_path / "out" / "rows.csv", text=True) as fh:
        fh.write("a,b\r\n")
    assert (tmp_path / "out" / "rows.csv").read_bytes() == b"a,b\r\n"  # newlines untranslated
    with pytest.raises(StateError, match="write-once"), create(tmp_path / "out" / "rows.csv"):
        pass
    (tmp_path / "target").write_bytes(b"keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(StateError), create(tmp_path / "link"):  # O_EXCL: a link is an existing name
        pass
    assert (tmp_path / "target").read_bytes() == b"keep"
