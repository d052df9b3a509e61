"""Workspace backup and restore: the record (database, artifacts, transcripts, journal, registers), never
the secrets (``secrets/``, ``share-cards/``) nor the token's files: CA keys are backed up wrapped, by the
key-backup ceremony, and PINs live in their custodians' shares.

The archive is a gzipped tar with ``BACKUP.json`` listing every member with its SHA-256 and size. A
SQLite inventory is copied through SQLite's backup API (a consistent snapshot even while others write);
a PostgreSQL inventory lives outside the workspace and is backed up with ``pg_dump`` (the archive says
so). A restore refuses members that would land outside the target, checks every hash before the
target directory appears, and records itself in the restored journal.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ceremony.errors import InputError, StateError
from ceremony.fs import create, open_regular, refuse_existing, sha256_file
from ceremony.model.events import WorkspaceBackup, WorkspaceRestore
from ceremony.record.manifest import parse_file_list
from ceremony.record.transcript import reading
from ceremony.record.workspace import WORKSPACE_FILE, Workspace

INDEX = "BACKUP.json"
#: What a backup holds, relative to the workspace (directories whole, minus lock files).
KEPT = (WORKSPACE_FILE, "people.yaml", "journal.jsonl", "checkpoints.jsonl", "artifacts", "transcripts", "registers",
        "exports", "timestamping")  # fmt: skip
#: Never backed up: secrets and the token's own files.
NEVER = ("secrets", "share-cards", "token", "rehearsal", "locks", "snapshots")


@dataclass
class BackupResult:
    archive: Path
    files: int
    sha256: str
    database: str

    def to_json(self) -> dict[str, Any]:
        return {"archive": str(self.archive), "files": self.files, "sha256": self.sha256, "database": self.database}


def _members(ws: Workspace) -> list[tuple[str, Path]]:
    """What a backup holds; a symlink anywhere in it is refused, never followed (DESIGN.md principle 9)."""
    out = []
    for name in KEPT:
        path = ws.root / name
        if os.path.islink(path):
            raise StateError(f"{path} is a symbolic link; a backup never follows one: replace it with the real file")
        if path.is_file():
            out.append((name, path))
        elif path.is_dir():
            for parent, dirs, files in os.walk(path):
                dirs.sort()
                for entry in sorted((*dirs, *files)):
                    found = Path(parent) / entry
                    if found.is_symlink():
                        raise StateError(f"{found} is a symbolic link; a backup never follows one: remove it")
                for entry in sorted(files):
                    found = Path(parent) / entry
                    if found.is_file() and not entry.endswith(".lock"):
                        out.append((found.relative_to(ws.root).as_posix(), found))
    return sorted(out)


def _open_member(path: Path) -> tuple[IO[bytes], int, str]:
    """A member opened without following a link, its size and SHA-256 (read from that descriptor, so the
    archive holds the bytes its index lists). A log is read while no append is under way (its lines, appended
    only, stay as read: the archive takes the ``size`` bytes hashed)."""
    fh = open_regular(path, "backup member")
    digest = hashlib.sha256()
    with reading(path):
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        size = fh.tell()
    fh.seek(0)
    return fh, size, digest.hexdigest()


def backup_workspace(ws: Workspace, out: Path) -> BackupResult:
    """Write the workspace's record to ``out`` (a new .tar.gz); returns what was written.

    The archive is written to ``OUT.partial`` (created exclusively, never through a link) and linked to
    ``out`` when whole, which never replaces a file (nor a link) that appeared meanwhile."""
    refuse_existing(out)
    if not out.parent.is_dir():
        raise InputError(f"--out: {out.parent} is not a directory")
    partial = out.with_name(out.name + ".partial")
    refuse_existing(partial, "--out")
    members = _members(ws)
    index: dict[str, Any] = {"format": "s1spki-workspace-backup/1", "created": ws.clock.now().isoformat(),
                             "workspace": str(ws.root), "excluded": list(NEVER), "files": []}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="backup-", dir=out.parent) as scratch, ExitStack() as opened:
        if isinstance(ws.database, Path):
            if os.path.islink(ws.database):
                raise StateError(f"{ws.database} is a symbolic link; a backup never follows one")
            copy = Path(scratch) / ws.database.name
            with sqlite3.connect(ws.database) as source, sqlite3.connect(copy) as target:
                source.backup(target)  # a consistent snapshot, even with writers
            members.append((ws.database.name, copy))
            index["database"] = f"sqlite ({ws.database.name}, in the archive)"
        else:
            index["database"] = "postgresql (outside the workspace: back it up with pg_dump)"
        handles = []
        for name, path in members:
            fh, size, digest = _open_member(path)
            opened.enter_context(fh)
            handles.append((name, fh, size))
            index["files"].append({"path": name, "sha256": digest, "size": size})
        mtime = int(ws.clock.now().timestamp())
        written = False
        try:
            with create(partial, mode=0o600, what="backups") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                written = True
                data = json.dumps(index, indent=1).encode()
                info = tarfile.TarInfo(INDEX)
                info.size, info.mtime = len(data), mtime
                tar.addfile(info, io.BytesIO(data))
                for name, fh, size in handles:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = size, mtime, 0o644
                    tar.addfile(info, fh)
            try:
                os.link(partial, out)  # never replaces what appeared at ``out`` meanwhile
            except FileExistsError:
                raise InputError(f"--out: {out} appeared while the backup was written; it was left alone") from None
        finally:
            if written:
                partial.unlink(missing_ok=True)
    digest = sha256_file(out, follow=False)
    ws.journal.append(WorkspaceBackup(archive=out.name, sha256=digest, files=len(members)))
    return BackupResult(out, len(members), digest, str(index["database"]))


def _check_members(archive: Path, tar: tarfile.TarFile) -> None:
    """Only the index and plain files it lists, inside the target, of kinds a backup holds."""
    try:
        listed = parse_file_list(tar.extractfile(INDEX).read())  # type: ignore[union-attr]
    except (KeyError, AttributeError):
        listed = "is missing"
    if isinstance(listed, str):
        raise InputError(f"{archive}: {INDEX} {listed}; not a workspace backup")
    for member in tar.getmembers():
        if member.name == INDEX:
            continue
        parts = Path(member.name).parts
        if not member.isfile() or Path(member.name).is_absolute() or ".." in parts:
            raise InputError(f"{archive}: member {member.name!r} is not a plain file inside the workspace")
        if member.name not in listed:
            raise InputError(f"{archive}: member {member.name!r} is not in {INDEX}")
        if parts[0] in NEVER:
            raise InputError(f"{archive}: member {member.name!r} is of a kind a backup never holds")


def restore_workspace(archive: Path, target: Path) -> Path:
    """Unpack ``archive`` into the new directory ``target``, every file checked against the index first."""
    if os.path.islink(target):
        raise InputError(f"--to: {target} is a symbolic link; a restore is never written through a link")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"--to: {target} exists and is not empty; a restore needs a new directory")
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"{archive}: not a workspace backup ({type(exc).__name__})") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".restore-", dir=target.parent))
    try:
        with tar:
            _check_members(archive, tar)
            tar.extractall(scratch, filter="data")
        listed = parse_file_list((scratch / INDEX).read_bytes())
        if isinstance(listed, str):
            raise InputError(f"{archive}: {INDEX} {listed}")
        for name, entry in listed.items():
            path = scratch / name
            if not path.is_file() or sha256_file(path) != entry["sha256"]:
                raise StateError(f"{archive}: {name} is missing or does not match {INDEX}; nothing restored")
        (scratch / INDEX).unlink()
        for sub in ("secrets", "share-cards"):
            (scratch / sub).mkdir(mode=0o700)
        if target.exists():
            target.rmdir()
        os.replace(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    ws = Workspace.open(target)
    try:
        digest = sha256_file(archive)
        ws.journal.append(WorkspaceRestore(archive=archive.name, sha256=digest))
    finally:
        ws.close()
    return target
