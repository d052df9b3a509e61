"""The one file primitive every layer uses: bounded reads of regular files, exclusive writes that never
follow a symlink, appends that never follow one either, permission checks, and file hashing.

Every file the workbench creates goes through :func:`write_once` (or :func:`write_private` for a secret
card, :func:`create` to stream, :func:`open_append` for a log): opened relative to its directory, which is
reached from the workspace root (or the nearest existing directory of a path the user named) one component
at a time with ``O_DIRECTORY | O_NOFOLLOW``, so that neither the file nor any directory between the root and
it may be a symlink; created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so that an existing file or a link
planted in its place is refused instead of overwritten or followed; given its mode explicitly (``fchmod``,
whatever the umask), written whole, fsynced, and hashed (DESIGN.md principle 9).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ceremony.errors import CeremonyError, InputError, StateError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW | _CLOEXEC
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
#: The file a workspace is recognised by: a write below it is checked from it down.
WORKSPACE_MARK = "workspace.yaml"
#: Directories of a workspace only its owner may enter (DESIGN.md, Workspace).
PRIVATE_DIRS = ("secrets", "share-cards", "token")
#: The modes directories are created with, whatever the umask.
DIR_MODE = 0o755
PRIVATE_DIR_MODE = 0o700


def sha256_file(path: Path, *, follow: bool = True) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (packs and backups hold PDFs and databases); with
    ``follow=False`` a symlink or anything but a regular file is an :class:`InputError`."""
    digest = hashlib.sha256()
    with open_regular(path, "file") if not follow else path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def workspace_of(path: Path) -> Path | None:
    """The workspace ``path`` lies in (the nearest ancestor holding a regular ``workspace.yaml``), or None."""
    for ancestor in Path(os.path.abspath(path)).parents:
        try:
            if stat.S_ISREG(os.lstat(ancestor / WORKSPACE_MARK).st_mode):
                return ancestor
        except OSError:
            continue
    return None


def _anchor(path: Path, root: Path | None) -> tuple[Path, tuple[str, ...]]:
    """The directory a walk to ``path`` starts from, and the components of ``path`` below it."""
    path = Path(os.path.abspath(path))
    start = Path(os.path.abspath(root)) if root is not None else workspace_of(path)
    if start is None:
        # A path the user named: the directories that exist are theirs; below them, nothing is followed.
        start = path.parent
        while not start.is_dir() and start != start.parent:
            start = start.parent
    try:
        parts = path.relative_to(start).parts
    except ValueError:
        raise StateError(f"{path} is not inside {start}; nothing is written outside it") from None
    if not parts or ".." in parts:
        raise StateError(f"{path} is not a file inside {start}")
    return start, parts


def _refuse_link(shown: Path, exc: OSError, what: str = "directory") -> CeremonyError:
    if os.path.islink(shown):
        return StateError(f"{shown} is a symbolic link; a link is never followed: remove it and run again")
    return StateError(f"{shown} is not a {what} ({exc.strerror}); remove it and run again")


def _dir_mode(parts: tuple[str, ...], mode: int) -> int:
    private = (parts and parts[0] in PRIVATE_DIRS) or not mode & 0o077
    return PRIVATE_DIR_MODE if private else DIR_MODE


def open_dir(path: Path, *, root: Path | None = None, make: bool = True, mode: int = 0o644) -> int:
    """A descriptor of the directory ``path``, reached from ``root`` (default: the workspace it lies in, else
    its nearest existing ancestor) without following a link; missing directories are created (``make``)
    with an explicit mode: 0700 under ``secrets/``, ``share-cards/``, ``token/`` or for a private ``mode``
    of the file to go in it, 0755 otherwise."""
    start, parts = _anchor(Path(path) / "_", root)
    parts = parts[:-1]
    try:
        fd = os.open(start, _DIRECTORY & ~_NOFOLLOW)  # the root: the workspace (resolved) or the user's own
    except FileNotFoundError as exc:
        raise StateError(f"{start}: no such directory") from exc
    except OSError as exc:
        raise StateError(f"{start}: not a directory ({exc.strerror})") from exc
    shown = start
    rel: tuple[str, ...] = ()
    try:
        for name in parts:
            shown, rel = shown / name, (*rel, name)
            created = False
            if make:
                dir_mode = _dir_mode(rel, mode)
                try:
                    os.mkdir(name, dir_mode, dir_fd=fd)
                    created = True
                except FileExistsError:
                    pass
            try:
                child = os.open(name, _DIRECTORY, dir_fd=fd)
            except FileNotFoundError as exc:
                raise StateError(f"{shown}: no such directory") from exc
            except OSError as exc:  # ELOOP or ENOTDIR: a link (or a file) stands where a directory would be
                raise _refuse_link(shown, exc) from exc
            os.close(fd)
            fd = child
            if created:
                os.fchmod(fd, _dir_mode(rel, mode))  # the umask does not choose it
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_dirs(path: Path, *, root: Path | None = None, private: bool = False) -> Path:
    """Create the directory ``path`` and its missing parents (as :func:`open_dir`, never through a link;
    0700 with ``private``); an existing directory is kept, a link where one would be is refused."""
    fd = open_dir(Path(path), root=root, mode=0o600 if private else 0o644)
    try:
        if private:
            os.fchmod(fd, PRIVATE_DIR_MODE)
    finally:
        os.close(fd)
    return path


def _create(path: Path, mode: int, what: str, root: Path | None = None) -> int:
    directory = open_dir(path.parent, root=root, mode=mode)
    try:
        fd = os.open(path.name, _CREATE, mode, dir_fd=directory)
    except FileExistsError as exc:
        if os.path.islink(path):
            raise StateError(
                f"{path} is a symbolic link; a link is never followed nor replaced: remove it and run again"
            ) from exc
        raise StateError(f"{path} already exists; {what} are write-once") from exc
    except OSError as exc:  # ELOOP: a symlink stands where the file would be
        raise StateError(f"{path} cannot be created ({exc.strerror}); a link is never followed") from exc
    finally:
        os.close(directory)
    try:
        os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def refuse_existing(path: Path, what: str = "--out") -> None:
    """Refuse an output path that exists, or at which a (possibly dangling) symlink stands."""
    if os.path.islink(path):
        raise InputError(f"{what}: {path} is a symbolic link; outputs are new files, never written through a link")
    if os.path.lexists(path):
        raise InputError(f"{what}: {path} exists; outputs are written to a new file")


@contextmanager
def create(
    path: Path, *, mode: int = 0o644, what: str = "files", text: bool = False, root: Path | None = None
) -> Iterator[IO[Any]]:
    """A new file at ``path`` to stream into (as :func:`write_once`: exclusive, never through a link),
    fsynced when the block ends; ``text`` opens it for UTF-8 text (newlines untranslated, as csv wants)."""
    fd = _create(path, mode, what, root)
    fh: IO[Any] = os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb")
    with fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_once(path: Path, data: bytes, *, mode: int = 0o644, what: str = "artifacts", root: Path | None = None) -> str:
    """Create ``path`` with ``data``, refusing an existing file or a symlink; returns its SHA-256 hex.

    The parent directories are created as needed (never through a link, see :func:`open_dir`); the file
    has exactly ``mode`` and is fsynced before this returns.
    """
    fd = _create(path, mode, what, root)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return hashlib.sha256(data).hexdigest()


def write_text_once(
    path: Path, text: str, *, mode: int = 0o644, what: str = "artifacts", root: Path | None = None
) -> str:
    """:func:`write_once` for UTF-8 text."""
    return write_once(path, text.encode("utf-8"), mode=mode, what=what, root=root)


def write_private(path: Path, text: str, *, root: Path | None = None) -> Path:
    """Create a file only its owner can read (0600, in 0700 directories), refusing an existing one: share
    and component cards, deposited shares, secrets."""
    write_once(path, text.encode("utf-8"), mode=0o600, what="secret files", root=root)
    return path


def open_append(path: Path, *, mode: int = 0o644, root: Path | None = None, lock: bool = False) -> int:
    """A descriptor appending to the log ``path`` (created with exactly ``mode`` when missing), never
    through a link nor into a file with other names (hard links); ``lock``: a lock file, opened read-write."""
    directory = open_dir(path.parent, root=root, mode=mode)
    flags = (os.O_RDWR if lock else os.O_WRONLY | os.O_APPEND) | _NOFOLLOW | _CLOEXEC
    try:
        try:
            fd = os.open(path.name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=directory)
            os.fchmod(fd, mode)
        except FileExistsError:
            fd = os.open(path.name, flags, dir_fd=directory)
    except OSError as exc:
        raise _refuse_link(path, exc, "regular file") from exc
    finally:
        os.close(directory)
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(fd)
        raise StateError(f"{path} is not a regular file with one name; a log is never written through a link")
    return fd


def open_regular(path: Path, what: str, *, root: Path | None = None, limit: int | None = None) -> IO[bytes]:
    """``path`` opened for reading: a regular file (not a link, device or FIFO), reached without following
    a link below ``root`` (when given), of at most ``limit`` bytes; anything else is an :class:`InputError`."""
    directory = open_dir(path.parent, root=root, make=False) if root is not None else None
    try:
        fd = os.open(
            path.name if directory is not None else path,
            os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC,
            dir_fd=directory,
        )
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such {what}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror}); a link is never followed") from exc
    finally:
        if directory is not None:
            os.close(directory)
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise InputError(f"{path}: the {what} must be a regular file")
    if limit is not None and status.st_size > limit:
        os.close(fd)
        raise InputError(f"{path}: the {what} is {status.st_size} bytes; the limit is {limit}")
    return os.fdopen(fd, "rb")


def read_regular(path: Path, limit: int, what: str, *, root: Path | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (not a link, device or FIFO) of at most
    ``limit`` bytes; anything else is an :class:`InputError` naming the file."""
    with open_regular(path, what, root=root, limit=limit) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{path}: the {what} is over the limit of {limit} bytes")
    return data


def check_not_writable_by_others(path: Path, what: str, *, error: type[CeremonyError] = StateError) -> None:
    """Refuse a directory (or file) that is a symlink, or that its group or others may write to: whoever can
    write there can replace what the workbench reads (a module path, a token, a share)."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(status.st_mode):
        raise error(f"{path}: the {what} is a symbolic link; a link is never followed: replace it by the real one")
    if stat.S_IMODE(status.st_mode) & 0o022:
        raise error(f"{path}: the {what} is writable by group or others (chmod go-w {path})")


def check_private_dir(
    directory: Path, what: str, *, error: type[CeremonyError] = StateError, files: bool = True
) -> None:
    """Refuse a private directory (``secrets/``, ``share-cards/``, ``token/``) that is a symlink or open to its
    group or others, and (``files``), below it, any symlink and any file they may read (the directories below
    it are out of their reach while it is its owner's only)."""
    try:
        status = os.lstat(directory)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(status.st_mode) or not stat.S_ISDIR(status.st_mode):
        raise error(f"{directory}: the {what} is a symbolic link or not a directory; replace it by the real one")
    if stat.S_IMODE(status.st_mode) & 0o077:
        raise error(f"{directory}: the {what} must be its owner's only (chmod 700 {directory})")
    if not files:
        return
    for parent, dirs, names in os.walk(directory):
        for name in (*dirs, *names):
            path = Path(parent) / name
            entry = os.lstat(path)
            if stat.S_ISLNK(entry.st_mode):
                raise error(f"{path} is a symbolic link in the {what}; a link is never followed: remove it")
            if not stat.S_ISDIR(entry.st_mode) and stat.S_IMODE(entry.st_mode) & 0o077:
                raise error(f"{path} must be readable by its owner only (chmod 600 {path})")
