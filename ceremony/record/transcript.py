"""Append-only, hash-chained JSON-lines logs: the operations journal and ceremony transcripts.

Each line is one JSON object with ``seq`` (from 1), ``time`` (UTC, ISO 8601), ``prev``
(the previous entry's ``hash``, or 64 zeros for the first), the entry's own fields, and
``hash`` = SHA-256 over the canonical JSON of every other field. Altering, removing or
reordering any line breaks the chain from that line on.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ceremony.clock import Clock, current
from ceremony.errors import CeremonyError, StateError
from ceremony.fs import open_append, open_regular, write_text_once
from ceremony.model.events import CeremonyStart, Deviation, Event, Record, Seal, Step

GENESIS = "0" * 64
#: How far the clock may read behind a log's last entry (an NTP step) before an append is refused.
CLOCK_SLACK = timedelta(seconds=2)


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


def lock_path(path: Path) -> Path:
    """The lock file beside the log at ``path``: held exclusively by an append, shared by a reader."""
    return path.with_suffix(path.suffix + ".lock")


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Hold the log at ``path`` still while it is read: a shared lock on its lock file, when it has one (a live
    log does; a copy in a pack does not, and nothing appends to it). Without this a reader may meet an append
    half written, and take a live log for a broken one. The lock is opened as any file the workbench reads (no
    link followed, nothing but a regular file: a FIFO planted there would hold every reader)."""
    lock = lock_path(path)
    if not os.path.lexists(lock):  # a lock file, once made, stays: no race with its creation to mind
        yield
        return
    try:
        fh = open_regular(lock, "log's lock")
    except CeremonyError as exc:
        raise StateError(f"cannot open the log's lock: {exc.message}") from None
    with fh:  # closing the descriptor releases its lock
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
        yield


def _incomplete(number: int) -> str:
    return f"line {number} has no end of line (an append was cut short)"


def read_entries(path: Path, first: int | None = None) -> list[dict[str, Any]]:
    """The log's entries (only its ``first`` ones, when given: the rest is not read)."""
    if not os.path.lexists(path):
        return []
    entries: list[dict[str, Any]] = []
    try:
        with reading(path), open_regular(path, "log") as raw, io.TextIOWrapper(raw, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if first is not None and len(entries) >= first:
                    break
                if not line.endswith("\n"):
                    raise StateError(f"{path}: {_incomplete(number)}")
                if line.strip():
                    entry = json.loads(line)
                    if not isinstance(entry, dict):
                        raise StateError(f"{path}: line {number} is not a JSON object")
                    entries.append(entry)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: not a log of JSON lines ({type(exc).__name__})") from None
    return entries


def verify_chain(path: Path) -> ChainStatus:
    """Recompute the chain; report the first broken line (1-based) if any."""
    prev, seq = GENESIS, 0
    try:
        if os.path.lexists(path):
            with reading(path), open_regular(path, "log") as fh:  # a link is never followed (DESIGN.md principle 9)
                data = fh.read()
            lines = data.decode("utf-8").splitlines()
        else:
            data, lines = b"", []
    except CeremonyError as exc:
        return ChainStatus(0, GENESIS, exc.message)
    except OSError as exc:
        return ChainStatus(0, GENESIS, f"cannot read {path} ({exc.strerror})")
    except UnicodeDecodeError as exc:
        return ChainStatus(0, GENESIS, f"{path.name} is not UTF-8 text (byte {exc.start})")
    for number, line in enumerate(lines, start=1):
        if number == len(lines) and not data.endswith(b"\n"):
            return ChainStatus(seq, prev, _incomplete(number))
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return ChainStatus(seq, prev, f"line {number} is not JSON")
        if not isinstance(entry, dict):
            return ChainStatus(seq, prev, f"line {number} is not a JSON object")
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

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        #: The workspace's clock; without one, the process's (:func:`ceremony.clock.current`).
        self.clock = clock or current()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Neither the lock nor the log is reached through a link (fs.open_append checks every parent).
        fd = open_append(lock_path(self.path), lock=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def last_entry(self) -> dict[str, Any] | None:
        """The last entry, read from the end of the file (None: the log is empty)."""
        with reading(self.path):
            return self._last_entry()

    def _last_entry(self) -> dict[str, Any] | None:
        """:meth:`last_entry` for whoever holds the lock already (an append)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        with open_regular(self.path, "log") as fh:
            size = fh.seek(0, os.SEEK_END)
            block = min(size, 1 << 20)  # an entry is far shorter (the longest, a ceremony's start, is a few kB)
            fh.seek(size - block)
            tail = fh.read()
        if not tail.endswith(b"\n"):
            raise StateError(f"{self.path}: its last line has no end of line (an append was cut short)")
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            entry = json.loads(last)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise StateError(f"{self.path}: its last line is not a JSON entry") from None
        if not isinstance(entry, dict):
            raise StateError(f"{self.path}: its last line is not a JSON object")
        return entry

    def _tail(self) -> tuple[int, str, str | None]:
        """The last entry's (seq, hash, time)."""
        entry = self._last_entry()
        if entry is None:
            return 0, GENESIS, None
        return int(entry["seq"]), str(entry["hash"]), entry.get("time")

    def append(self, record: Record, *, now: datetime | None = None) -> dict[str, Any]:
        """Append one event (a :mod:`ceremony.model.events` record) and fsync it; returns the entry as
        written. Without ``now`` (the log's own clock), a clock that reads earlier than the last entry is
        refused: the log's order is its time order."""
        event, fields = str(record.EVENT), record.entry_fields()
        with self._locked():
            fd = open_append(self.path)  # first: a log reached through a link is refused before it is read
            try:
                seq, prev, last = self._tail()
                when = (now or self.clock.now()).astimezone(timezone.utc)
                if now is None:
                    self._refuse_clock_behind(when, last)
                entry: dict[str, Any] = {
                    "seq": seq + 1,
                    "time": when.isoformat(timespec="microseconds"),
                    "prev": prev,
                    "event": event,
                    **fields,
                }
                entry["hash"] = entry_hash(entry)
                line = canonical(entry) + b"\n"
                if os.write(fd, line) != len(line):
                    raise StateError(f"short write to {self.path}")
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def _refuse_clock_behind(self, when: datetime, last: str | None) -> None:
        if last is not None and datetime.fromisoformat(last) - when > CLOCK_SLACK:
            raise StateError(
                f"the clock reads {when:%Y-%m-%d %H:%M:%S}Z, {datetime.fromisoformat(last) - when} before the last "
                f"entry of {self.path.name} ({last}); set the clock right before going on"
            )

    def check_clock(self) -> None:
        """Refuse now, before anything is signed, what ``append`` would refuse after: a clock behind the log."""
        with reading(self.path):
            last = self._tail()[2]
        self._refuse_clock_behind(self.clock.now(), last)

    def entries(self) -> list[dict[str, Any]]:
        return read_entries(self.path)

    def verify(self) -> ChainStatus:
        return verify_chain(self.path)


# --- ceremony transcripts --------------------------------------------------------------


def read_aloud(digest: bytes, words: int = 8) -> str:
    """A fingerprint witnesses read aloud and copy onto the paper record (``words`` x 10 bits).

    Words come from SLIP-39's 1024-word list: distinct in their first four letters, easy to say.
    """
    from shamir_mnemonic.wordlist import WORDLIST

    value = int.from_bytes(hashlib.sha256(digest).digest(), "big")
    out = [WORDLIST[(value >> (256 - 10 * (i + 1))) & 0x3FF] for i in range(words)]
    return " ".join(out)


class Transcript(Journal):
    """A ceremony transcript: start, steps, deviations, then a seal signed with the ceremony's CA key.

    The seal is also written beside the transcript (``<name>.seal.json``), so that a sealed
    transcript that lost its last lines is told apart from one that was never sealed.
    """

    @property
    def seal_path(self) -> Path:
        return self.path.with_suffix(".seal.json")

    def append(self, record: Record, *, now: datetime | None = None) -> dict[str, Any]:
        """Append one entry; a sealed transcript (finished, or sealed as abandoned) takes none."""
        if os.path.lexists(self.seal_path):
            raise StateError(
                f"{self.path.name} is sealed; nothing is appended after its seal (a new run needs a new ceremony_id)"
            )
        return super().append(record, now=now)

    def ensure_new(self) -> None:
        if self.path.exists():
            raise StateError(
                f"transcript {self.path} already exists; a ceremony id is used once: give the file a new "
                f"ceremony_id (a ceremony that failed or was interrupted is first abandoned: "
                f"`ceremony abandon {self.path.stem} --witness P1 --witness P2`)"
            )

    def start(self, ceremony_id: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.ensure_new()
        return self.append(CeremonyStart(ceremony_id=ceremony_id, type=kind, extra=fields))

    def step(
        self,
        step: str,
        action: str,
        *,
        actors: list[str],
        inputs: dict[str, str] | None = None,
        outputs: dict[str, str] | None = None,
        result: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One scripted step; ``inputs``/``outputs`` map names to SHA-256 hex digests."""
        return self.append(
            Step(
                step=step,
                action=action,
                actors=actors,
                inputs=inputs or {},
                outputs=outputs or {},
                result=result,
                extra={"details": details} if details else {},
            )
        )

    def deviation(self, what: str, why: str, acknowledged_by: list[str]) -> dict[str, Any]:
        """A departure from the script, on record with who acknowledged it."""
        return self.append(Deviation(what=what, why=why, acknowledged_by=acknowledged_by))

    def seal(self, key: Any, *, key_label: str, abandoned: bool = False) -> dict[str, Any]:
        """Sign the chain head with the ceremony's CA key and close the transcript; ``abandoned``: the seal of
        an abandoned ceremony (after its ``abandon`` entry), which says so."""
        from cryptography.hazmat.primitives import serialization

        from ceremony.keys.signatures import sign

        status = self.verify()
        if not status.ok:
            raise StateError(f"cannot seal {self.path}: {status.error}")
        if self.seal_path.exists():
            raise StateError(f"{self.path} is already sealed")
        head = bytes.fromhex(status.head)
        signature = sign(key, head)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        entry = self.append(
            Seal(
                sealed_hash=status.head,
                entries=status.entries,
                key_label=key_label,
                public_key=spki.hex(),
                signature=signature.hex(),
                words=read_aloud(head),
                extra={"abandoned": True} if abandoned else {},
            )
        )
        seal = {
            "transcript": self.path.name,
            "entries": entry["seq"],
            "hash": entry["hash"],
            "sealed_hash": status.head,
            "words": entry["words"],
        } | ({"abandoned": True} if abandoned else {})
        write_text_once(self.seal_path, json.dumps(seal, indent=2), what="seals")
        return entry


@dataclass(frozen=True)
class TranscriptReport:
    """The verdict on one transcript; ``ok`` only when intact, sealed and the seal verifies."""

    ok: bool
    message: str
    entries: int = 0
    words: str | None = None


def abandonment(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``abandon`` entry of an abandoned ceremony's transcript (None: not abandoned)."""
    return next((e for e in entries if e.get("event") == Event.ABANDON), None)


def _last_step(entries: list[dict[str, Any]]) -> str:
    steps = [str(e["step"]) for e in entries if e.get("event") == Event.STEP]
    return steps[-1] if steps else "none (no step was recorded)"


def verify_transcript(path: Path) -> TranscriptReport:
    """Intact chain, one seal as the last entry, seal signature valid, and no truncation."""
    from cryptography.hazmat.primitives import serialization

    from ceremony.keys.signatures import verifies

    if not path.is_file():
        return TranscriptReport(False, f"{path}: no such transcript")
    status = verify_chain(path)
    if not status.ok:
        return TranscriptReport(False, f"{path}: {status.error}", status.entries)
    entries = read_entries(path)
    seals = [i for i, e in enumerate(entries) if e.get("event") == Event.SEAL]
    if seals and seals[0] != len(entries) - 1:
        return TranscriptReport(False, f"{path}: line {seals[0] + 2}: entries after the seal", len(entries))
    sidecar = Transcript(path).seal_path
    recorded = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else None
    if not seals:
        if recorded is not None:
            return TranscriptReport(
                False,
                f"{path}: truncated: sealed with {recorded['entries']} entries, {len(entries)} present",
                len(entries),
            )
        return TranscriptReport(
            False, f"{path}: intact but not sealed (interrupted after step {_last_step(entries)})", len(entries)
        )
    seal = entries[-1]
    if recorded is not None and (recorded["entries"] != seal["seq"] or recorded["hash"] != seal["hash"]):
        return TranscriptReport(False, f"{path}: the seal differs from {sidecar.name}", len(entries))
    if seal["sealed_hash"] != seal["prev"]:
        return TranscriptReport(False, f"{path}: line {len(entries)}: the seal names another chain head")
    try:
        key = serialization.load_der_public_key(bytes.fromhex(seal["public_key"]))
        ok = verifies(key, bytes.fromhex(seal["signature"]), bytes.fromhex(seal["sealed_hash"]))
    except ValueError:
        ok = False
    if not ok:
        return TranscriptReport(False, f"{path}: line {len(entries)}: seal signature does not verify", len(entries))
    what = abandonment(entries)
    if bool(seal.get("abandoned")) != (what is not None and entries[-2] is what):
        return TranscriptReport(
            False, f"{path}: line {len(entries)}: the seal and the abandon entry before it disagree", len(entries)
        )
    if what is not None:
        return TranscriptReport(
            True,
            f"{path}: intact and sealed as ABANDONED ({what['reason']}), "
            f"{len(entries)} entries; read aloud: {seal['words']}",
            len(entries),
            seal["words"],
        )
    return TranscriptReport(
        True,
        f"{path}: intact and sealed, {len(entries)} entries; read aloud: {seal['words']}",
        len(entries),
        seal["words"],
    )


#: Fields that differ between two runs of the same script without meaning anything: times,
#: chain links, serials, digests, fingerprints, signatures and key material.
_VOLATILE = {
    "seq",
    "time",
    "prev",
    "hash",
    "sealed_hash",
    "signature",
    "public_key",
    "words",
    "file_sha256",
    "serial",
    "fingerprint",
    "sha256",
    "not_before",
    "not_after",
    "message",
    "kcv",
    "old_kcv",
    "wrapped_sha256",
    "expected",
    "succeeded_at",
    "issues_until",
}
_HEX = re.compile(r"[0-9a-fA-F]{16,}")


def _normalise(value: Any, key: str | None = None) -> Any:
    if key in _VOLATILE:
        return "…"
    if key in ("inputs", "outputs") and isinstance(value, dict):
        return sorted(value)  # the names of what went in and out, not their digests
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, str) and _HEX.fullmatch(value):
        return "…"
    return value


def _shape(entry: dict[str, Any]) -> str:
    """One comparable line per entry: what happened and who did it, with volatile values masked."""
    return canonical(_normalise(entry)).decode()


def diff_transcripts(a: Path, b: Path) -> list[str]:
    """The differences that matter between two transcripts (steps, actors, parameters, outputs by name)."""
    import difflib

    left = [_shape(e) for e in read_entries(a)]
    right = [_shape(e) for e in read_entries(b)]
    return [
        line
        for line in difflib.unified_diff(left, right, str(a), str(b), lineterm="", n=0)
        if not line.startswith("@@")
    ]
