"""Append-only, hash-chained JSON-lines logs: the operations journal (and, later, ceremony transcripts).

Each line is one JSON object with ``seq`` (from 1), ``time`` (UTC, ISO 8601), ``prev``
(the previous entry's ``hash``, or 64 zeros for the first), the entry's own fields, and
``hash`` = SHA-256 over the canonical JSON of every other field. Altering, removing or
reordering any line breaks the chain from that line on.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ceremony.errors import StateError

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    """The byte form entries are hashed in: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True)
class ChainStatus:
    entries: int
    head: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open("r", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def verify_chain(path: Path) -> ChainStatus:
    """Recompute the chain; report the first broken line (1-based) if any."""
    prev, seq = GENESIS, 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except OSError as exc:
        return ChainStatus(0, GENESIS, f"cannot read {path} ({exc.strerror})")
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return ChainStatus(seq, prev, f"line {number} is not JSON")
        if entry.get("seq") != seq + 1:
            return ChainStatus(seq, prev, f"line {number}: sequence {entry.get('seq')} after {seq}")
        if entry.get("prev") != prev:
            return ChainStatus(seq, prev, f"line {number}: prev does not match line {number - 1}")
        if entry.get("hash") != entry_hash(entry):
            return ChainStatus(seq, prev, f"line {number}: hash does not match its content")
        prev, seq = entry["hash"], seq + 1
    return ChainStatus(seq, prev)


class Journal:
    """An append-only hash-chained log file; appends are serialised with an exclusive lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(self.path.suffix + ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _tail(self) -> tuple[int, str]:
        """The last entry's (seq, hash), read from the end of the file."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0, GENESIS
        with self.path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = min(size, 65536)
            fh.seek(size - block)
            last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        entry = json.loads(last)
        return int(entry["seq"]), str(entry["hash"])

    def append(self, event: str, fields: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
        """Append one entry and fsync it; returns the entry as written."""
        when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        with self._locked():
            seq, prev = self._tail()
            entry: dict[str, Any] = {
                "seq": seq + 1,
                "time": when.isoformat(timespec="microseconds"),
                "prev": prev,
                "event": event,
                **fields,
            }
            entry["hash"] = entry_hash(entry)
            line = canonical(entry) + b"\n"
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
            try:
                if os.write(fd, line) != len(line):
                    raise StateError(f"short write to {self.path}")
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        return read_entries(self.path)

    def verify(self) -> ChainStatus:
        return verify_chain(self.path)
