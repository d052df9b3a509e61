"""Write-once files: created exclusively, fsynced, hashed; never overwritten."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ceremony.errors import StateError


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (packs and backups hold PDFs and databases)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_once(path: Path, data: bytes, *, mode: int = 0o644) -> str:
    """Create ``path`` with ``data`` (refusing an existing file); returns its SHA-256 hex."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except FileExistsError as exc:
        raise StateError(f"{path} already exists; artifacts are write-once") from exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return hashlib.sha256(data).hexdigest()


def write_private(path: Path, text: str) -> Path:
    """Create a file only its owner can read (0600), refusing an existing one: share and component
    cards, deposited shares, secrets."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
