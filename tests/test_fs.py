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


# --- no write follows a link: neither the file nor a directory on the way to it (DESIGN.md principle 9) ----------
def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "workspace.yaml").write_text("schema_version: 1\n")
    return root


@pytest.mark.parametrize("root_given", [True, False], ids=["root", "found-by-workspace-yaml"])
def test_a_linked_parent_directory_is_refused(tmp_path: Path, root_given: bool) -> None:
    root = _workspace(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "artifacts").mkdir()
    (root / "artifacts" / "crls").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StateError, match=r"artifacts/crls is a symbolic link; a link is never followed"):
        write_once(root / "artifacts" / "crls" / "ca-1.crl", b"der", root=root if root_given else None)
    assert list(elsewhere.iterdir()) == []


def test_a_path_outside_the_root_is_refused(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with pytest.raises(StateError, match="is not inside"):
        write_once(tmp_path / "other.txt", b"x", root=root)
    assert not (tmp_path / "other.txt").exists()


def test_modes_are_explicit_whatever_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    from ceremony.fs import make_dirs, write_private

    root = _workspace(tmp_path)
    old = os.umask(0)
    try:
        write_once(root / "artifacts" / "cas" / "root.pem", b"pem")
        write_private(root / "secrets" / "shares" / "p" / "alice.share", "words")
        make_dirs(root / "share-cards", private=True)
    finally:
        os.umask(old)
    expected = {
        "artifacts": 0o755,
        "artifacts/cas": 0o755,
        "artifacts/cas/root.pem": 0o644,
        "secrets": 0o700,
        "secrets/shares/p": 0o700,
        "secrets/shares/p/alice.share": 0o600,
        "share-cards": 0o700,
    }
    assert {rel: stat.S_IMODE((root / rel).stat().st_mode) for rel in expected} == expected


def test_a_dangling_link_is_named_as_a_link(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    with pytest.raises(StateError, match=r"out is a symbolic link; a link is never followed nor replaced"):
        write_once(tmp_path / "out", b"x")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "linked-parent"])
def test_an_append_never_follows_a_link(tmp_path: Path, kind: str) -> None:
    import os

    from ceremony.fs import open_append

    root = _workspace(tmp_path)
    target = tmp_path / "target.jsonl"
    target.write_bytes(b"keep\n")
    log = root / "journal.jsonl"
    if kind == "symlink":
        log.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, log)
    else:
        (root / "transcripts").symlink_to(tmp_path, target_is_directory=True)
        log = root / "transcripts" / "target.jsonl"
    with pytest.raises(StateError, match="journal.jsonl|transcripts"):
        os.close(open_append(log))
    assert target.read_bytes() == b"keep\n"
    fd = open_append(root / "fresh.jsonl")  # and a new log is created with its mode
    os.close(fd)
    assert (root / "fresh.jsonl").stat().st_mode & 0o777 == 0o644


def test_private_and_shared_directories_are_checked(tmp_path: Path) -> None:
    from ceremony.fs import check_not_writable_by_others, check_private_dir

    root = _workspace(tmp_path)
    (root / "secrets").mkdir(mode=0o700)
    (root / "secrets" / "pin").write_text("x")
    (root / "secrets" / "pin").chmod(0o600)
    check_private_dir(root / "secrets", "secrets/ directory")
    check_not_writable_by_others(root, "workspace")
    (root / "secrets" / "pin").chmod(0o640)
    with pytest.raises(StateError, match=r"pin must be readable by its owner only \(chmod 600 "):
        check_private_dir(root / "secrets", "secrets/ directory")
    (root / "secrets" / "pin").chmod(0o600)
    (root / "secrets" / "link").symlink_to(root / "secrets" / "pin")
    with pytest.raises(StateError, match=r"link is a symbolic link in the secrets/ directory"):
        check_private_dir(root / "secrets", "secrets/ directory")
    root.chmod(0o775)
    with pytest.raises(StateError, match=r"writable by group or others \(chmod go-w "):
        check_not_writable_by_others(root, "workspace")
    root.chmod(0o755)


def test_sha256_without_following_refuses_a_link(tmp_path: Path) -> None:
    from ceremony.errors import InputError
    from ceremony.fs import sha256_file

    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert sha256_file(tmp_path / "real", follow=False) == hashlib.sha256(b"x").hexdigest()
    with pytest.raises(InputError, match="link"):
        sha256_file(tmp_path / "link", follow=False)
