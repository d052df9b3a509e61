"""`ceremony workspace backup|restore`: the workspace's record, never its secrets or token files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cmd_backup(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened
    from ceremony.record.backup import backup_workspace

    with opened(args) as ws:
        result = backup_workspace(ws, Path(args.out))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"backup {result.archive}: {result.files} files, sha256 {result.sha256}; database: {result.database}")
        print("not in it, by design: secrets/, share-cards/ and the token (CA keys are backed up wrapped)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from ceremony.record.backup import restore_workspace

    target = restore_workspace(Path(args.archive), Path(args.to))
    print(f"restored into {target}; every file matched the backup's index")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("workspace", help="back up or restore a workspace's record")
    ws = p.add_subparsers(dest="workspace_command", required=True)
    b = ws.add_parser("backup", help="database, artifacts, transcripts, journal, registers -> a new .tar.gz")
    b.add_argument("--out", required=True, help="the archive to write (a new file)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_backup)
    r = ws.add_parser("restore", help="unpack a backup into a new directory, every file checked first")
    r.add_argument("archive")
    r.add_argument("--to", required=True, help="a new (or empty) directory")
    r.set_defaults(func=cmd_restore)
