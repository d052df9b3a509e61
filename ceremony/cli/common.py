"""What every command group shares: a parser that exits 2 in one line, the workspace a command names, JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ceremony.errors import InputError

if TYPE_CHECKING:
    from ceremony.record.workspace import Workspace


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One short line on stderr, exit 2 (the contract for rejected usage).
        self.exit(2, f"{self.prog}: {message}\n")


DATABASE_HELP = (
    "a postgresql:// URL for an inventory shared by several operators (no password in it: use ~/.pgpass or "
    "PGPASSWORD); default: a SQLite file in the workspace"
)


def workspace_dir(args: argparse.Namespace) -> Path:
    """The workspace a command names: ``--workspace``, else ``$CEREMONY_WORKSPACE``, else ``./workspace``.

    The one place the three are resolved: every run and pack is recorded with the workspace this returns."""
    return Path(args.workspace or os.environ.get("CEREMONY_WORKSPACE") or "workspace")


def reports_dir(args: argparse.Namespace, workspace: Path | None = None) -> Path:
    """Where a command's runs and packs go: ``--reports DIR``, else ``<workspace>/reports`` (the workspace the
    command names, or ``workspace``): a workspace's runs and packs live in it (DESIGN.md, Workspace)."""
    given = getattr(args, "reports", None)
    if given:
        return Path(given)
    return (workspace or workspace_dir(args)) / "reports"


REPORTS_HELP = "reports directory (default: <workspace>/reports)"


def register_path(args: argparse.Namespace) -> Path:
    from ceremony.model.people import default_register

    if args.register:
        return Path(args.register)
    root = workspace_dir(args)
    return default_register(root if root.is_dir() else None)


@contextmanager
def opened(args: argparse.Namespace, *, assessing: bool = False) -> Iterator[Workspace]:
    """The workspace the command names, closed (token logged out, database closed) whatever happens.

    A demo, rehearsal or test workspace says so on stderr after the command's output, so that no output of
    it passes for a live PKI's (a refused command prints only its one-line error). ``assessing``: an
    assessment opens a workspace whose mark was changed, to report it (GOV-05)."""
    from ceremony.record.workspace import Workspace

    ws = Workspace.open(workspace_dir(args), assessing=assessing)
    try:
        yield ws
    except OSError as exc:
        refused_output(args, exc)
        raise
    finally:
        ws.close()
    if ws.mark is not None:  # after the command's own output; a refused command prints its one line only
        print(f"{ws.mark}: {ws.root}", file=sys.stderr)


def refused_output(args: argparse.Namespace, exc: OSError) -> None:
    """Turn the OSError of writing the file the user named (``--out``) into one line (exit 2): a file or a
    (dangling) symlink already there, a directory that is not one. Any other OSError is left as it is."""
    out = getattr(args, "out", None)
    if not isinstance(out, str) or exc.filename is None:
        return
    if os.path.abspath(os.fsdecode(exc.filename)) != os.path.abspath(out):
        return
    link = " (a symbolic link stands there)" if os.path.islink(out) else ""
    raise InputError(
        f"--out: {out} cannot be written ({exc.strerror}){link}; outputs are new files, never written through a link"
    ) from exc


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))
