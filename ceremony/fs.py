"""The one file primitive every layer uses: bounded reads of regular files, exclusive writes that never
follow a symlink, and file hashing.

Every file the workbench creates goes through :func:`write_once` (or :func:`write_private` for a secret
card): created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so an existing file or a symlink planted in its
place is refused instead of overwritten or followed, written whole, fsynced, and hashed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ceremony.errors import InputError, StateError

_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (packs and backups hold PDFs and databases)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _create(path: Path, mode: int, what: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return os.open(path, _CREATE, mode)
    except FileExistsError as exc:
        raise StateError(f"{path} already exists; {what} are write-once") from exc
    except OSError as exc:  # ELOOP: a symlink stands where the file would be
        raise StateError(f"{path} cannot be created ({exc.strerror}); a link is never followed") from exc


@contextmanager
def create(path: Path, *, mode: int = 0o644, what: str = "files", text: bool = False) -> Iterator[IO[Any]]:
    """A new file at ``path`` to stream into (as :func:`write_once`: exclusive, never through a link),
    fsynced when the block ends; ``text`` opens it for UTF-8 text (newlines untranslated, as csv wants)."""
    fd = _create(path, mode, what)
    with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8", "newline": ""} if text else {})) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_once(path: Path, data: bytes, *, mode: int = 0o644, what: str = "artifacts") -> str:
    """Create ``path`` with ``data``, refusing an existing file or a symlink; returns its SHA-256 hex.

    The parent directories are created as needed; the file is fsynced before this returns.
    """
    fd = _create(path, mode, what)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return hashlib.sha256(data).hexdigest()


def write_text_once(path: Path, text: str, *, mode: int = 0o644, what: str = "artifacts") -> str:
    """:func:`write_once` for UTF-8 text."""
    return write_once(path, text.encode("utf-8"), mode=mode, what=what)


def write_private(path: Path, text: str) -> Path:
    """Create a file only its owner can read (0600), refusing an existing one: share and component
    cards, deposited shares, secrets."""
    write_once(path, text.encode("utf-8"), mode=0o600, what="secret files")
    return path


def read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, which must be a regular file (not a link, device or FIFO) of at most
    ``limit`` bytes; anything else is an :class:`InputError` naming the file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such {what}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{path}: the {what} must be a regular file")
        if status.st_size > limit:
            raise InputError(f"{path}: the {what} is {status.st_size} bytes; the limit is {limit}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"{path}: the {what} is over the limit of {limit} bytes")
    return data
