"""Signed checkpoints of the operations journal: its head anchored outside the file.

A hash chain shows that a log was edited only if someone kept an earlier head. A checkpoint keeps one:
at every ceremony seal, CRL publication and batch completion, the journal's entry count and head hash
are signed with the token key the operation used, and the signed record is appended both to the journal
(``journal.checkpoint``) and to ``checkpoints.jsonl`` beside it. Each evidence pack then carries the last
checkpoint and the journal's head in its signed manifest, so a PIN holder who re-chains and re-signs an
edited journal still contradicts a pack already handed to the assessor (docs/security.md says what such a
person can change between two packs).

The signed bytes are a domain-separated canonical JSON object, so a checkpoint signature can never be
taken for a certificate, CRL or transcript seal signature made with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from ceremony.errors import CeremonyError
from ceremony.keys.signatures import sign, verifies
from ceremony.model.events import Event, JournalCheckpoint
from ceremony.record.transcript import Journal, canonical, read_entries, verify_chain

CHECKPOINTS_FILE = "checkpoints.jsonl"
#: Prefixed to every signed checkpoint body (domain separation from the key's other signatures).
DOMAIN = b"S1SPKI journal checkpoint v1\n"
#: The fields a checkpoint's signature covers.
SIGNED = ("checkpoint", "workspace", "entries", "head", "reason", "anchors", "signed_at")


def signed_bytes(record: dict[str, Any]) -> bytes:
    """What a checkpoint's signature is over."""
    return DOMAIN + canonical({name: record.get(name) for name in SIGNED})


def workspace_identity(journal: list[dict[str, Any]]) -> str:
    """A workspace's identity: the hash of its journal's first entry (its creation)."""
    return str(journal[0].get("hash", "")) if journal else ""


def checkpoints_log(root: Path) -> Journal:
    return Journal(root / CHECKPOINTS_FILE)


def write_checkpoint(
    journal: Journal, key: Any, *, key_label: str, reason: str, anchors: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """Sign the journal's current head with ``key`` and append the checkpoint to the journal and to
    ``checkpoints.jsonl``; returns the journal entry (None: the token would not sign, see below). A journal
    whose chain is broken is not vouched for: the checkpoint then records ``head`` as the last intact entry's,
    and the checks report the break."""
    status = verify_chain(journal.path)
    entries = read_entries(journal.path)
    log = checkpoints_log(journal.path.parent)
    previous = [e for e in read_entries(log.path) if e.get("event") == Event.JOURNAL_CHECKPOINT]
    body: dict[str, Any] = {
        "checkpoint": len(previous) + 1,
        "workspace": workspace_identity(entries),
        "entries": status.entries,
        "head": status.head,
        "reason": reason,
        "anchors": dict(anchors or {}),
        "signed_at": journal.clock.now().isoformat(timespec="microseconds"),
    }
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        signature = sign(key, signed_bytes(body))
    except CeremonyError:
        # An activation session whose signature budget the operation used up: the operation stands, and
        # the next checkpoint covers these entries too (LOG-03 reports nothing missing; docs/security.md).
        return None
    record = JournalCheckpoint(**body, key_label=key_label, public_key=public.hex(), signature=signature.hex())
    entry = journal.append(record)
    log.append(record)
    return entry


def _near(a: Any, b: Any, seconds: float = 60.0) -> bool:
    from datetime import datetime

    try:
        return abs((datetime.fromisoformat(str(a)) - datetime.fromisoformat(str(b))).total_seconds()) <= seconds
    except ValueError:
        return False


@dataclass(frozen=True)
class CheckpointProblem:
    """One way the journal and its checkpoints disagree."""

    subject: str
    code: str
    message: str


@lru_cache(maxsize=16384)
def _verifies(spki: bytes, signature: bytes, signed: bytes) -> bool:
    """A checkpoint's signature checked once per process (an assessment re-reads every checkpoint each time)."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    return verifies(load_der_public_key(spki), signature, signed)


def checkpoint_problems(
    journal: list[dict[str, Any]], checkpoints: list[dict[str, Any]], known_keys: set[str]
) -> list[CheckpointProblem]:
    """Every disagreement between the journal, the checkpoints recorded in it and those in
    ``checkpoints.jsonl``: a bad signature, a key that is no CA or seal key of this workspace
    (``known_keys``: SHA-256 hex of SubjectPublicKeyInfo DER), a head the journal no longer has, a
    journal shorter than a checkpoint, a checkpoint in one place and not the other, times out of order."""
    import hashlib

    problems: list[CheckpointProblem] = []
    identity = workspace_identity(journal)
    in_journal = {int(e["checkpoint"]): e for e in journal if e.get("event") == Event.JOURNAL_CHECKPOINT}
    in_file = {int(e["checkpoint"]): e for e in checkpoints if e.get("event") == Event.JOURNAL_CHECKPOINT}
    latest = list(accumulate((str(e.get("time", "")) for e in journal), max))  # latest[i]: of entries 0..i
    for number in sorted(set(in_journal) | set(in_file)):
        subject = f"checkpoint {number}"
        record = in_file.get(number) or in_journal[number]
        if number not in in_file:
            problems.append(
                CheckpointProblem(subject, "file", f"{subject} is in the journal, not in {CHECKPOINTS_FILE}")
            )
        elif number not in in_journal:
            problems.append(
                CheckpointProblem(
                    subject,
                    "journal",
                    f"{subject} ({record.get('reason')}) is in {CHECKPOINTS_FILE}, not in the journal",
                )
            )
        elif any(in_file[number].get(k) != in_journal[number].get(k) for k in (*SIGNED, "signature")):
            problems.append(CheckpointProblem(subject, "differ", f"{subject} reads differently in the journal"))
        if number in in_journal and not _near(in_journal[number].get("time"), record.get("signed_at")):
            problems.append(
                CheckpointProblem(
                    subject,
                    "time",
                    f"{subject} is dated {in_journal[number].get('time')} in the journal but was "
                    f"signed at {record.get('signed_at')}",
                )
            )
        try:
            spki = bytes.fromhex(str(record.get("public_key")))
            good = _verifies(spki, bytes.fromhex(str(record.get("signature"))), signed_bytes(record))
        except ValueError:
            spki, good = b"", False
        if not good:
            problems.append(CheckpointProblem(subject, "signature", f"{subject}'s signature does not verify"))
        elif hashlib.sha256(spki).hexdigest() not in known_keys:
            problems.append(
                CheckpointProblem(
                    subject, "key", f"{subject} is signed with a key that is no CA or seal key of this workspace"
                )
            )
        if record.get("workspace") != identity:
            problems.append(CheckpointProblem(subject, "workspace", f"{subject} names another journal's creation"))
        entries, head = int(record.get("entries", 0)), str(record.get("head"))
        if entries > len(journal):
            problems.append(
                CheckpointProblem(
                    subject,
                    "truncated",
                    f"{subject} signed a journal of {entries} entries; the journal now has {len(journal)}",
                )
            )
        elif entries and journal[entries - 1].get("hash") != head:
            problems.append(
                CheckpointProblem(
                    subject,
                    "rewritten",
                    f"{subject} signed entry {entries} as {head[:16]}…; the journal's entry {entries} now hashes "
                    f"to {str(journal[entries - 1].get('hash'))[:16]}…: entries up to it were rewritten",
                )
            )
        else:
            signed_at = str(record.get("signed_at", ""))
            if entries and latest[entries - 1] > signed_at:  # one pass for all checkpoints, not one each
                late = next(e for e in journal[:entries] if str(e.get("time", "")) > signed_at)
                problems.append(
                    CheckpointProblem(
                        subject, "time", f"entry {late.get('seq')} is dated after {subject}, which covers it"
                    )
                )
    return problems
