"""File lists of packs and backups: every file with its SHA-256 and size, and a hostile list refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ceremony.fs import sha256_file


def file_list(root: Path, *, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every file under ``root`` (sorted, relative POSIX paths) with its SHA-256 and size."""
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        out.append({"path": rel, "sha256": sha256_file(path), "size": path.stat().st_size})
    return out


def parse_file_list(data: bytes) -> dict[str, dict[str, Any]] | str:
    """A manifest's (or a backup index's) ``files`` by path, or what is wrong with it: a hostile list
    names nothing outside its directory."""
    try:
        files = json.loads(data)["files"]
    except (ValueError, KeyError, TypeError):
        return "not a manifest this tool reads"
    listed: dict[str, dict[str, Any]] = {}
    for entry in files if isinstance(files, list) else [None]:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("size"), int)
        ):
            return "an entry lacks its path, sha256 or size"
        parts = Path(entry["path"]).parts
        if not parts or Path(entry["path"]).is_absolute() or ".." in parts:
            return f"lists {entry['path']!r}, which is outside its directory"
        listed[entry["path"]] = entry
    return listed
