"""An insider's tools: edit a workspace's inventory, journal, artifacts and transcripts the way someone with
write access (and, for some edits, the PIN) would, re-chaining and re-signing what they can."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ceremony.record.checkpoints import signed_bytes
from ceremony.record.transcript import GENESIS, canonical, entry_hash, read_entries

Entries = list[dict[str, Any]]
Signer = Callable[[str, bytes], bytes]
"""Signs bytes with the token key of a label (a PIN holder's power)."""


def overwrite(path: Path, data: bytes) -> None:
    """Replace a file's content (write-once files rest read-only; the insider chmods them)."""
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data)


def sql(workspace: Path, statement: str, params: tuple[Any, ...] = ()) -> int:
    """Run one statement on the workspace's SQLite inventory; returns the rows it changed."""
    with sqlite3.connect(workspace / "inventory.sqlite") as db:
        return db.execute(statement, params).rowcount


def query(workspace: Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(workspace / "inventory.sqlite") as db:
        return db.execute(statement, params).fetchall()


def rechain(entries: Entries, signer: Signer | None = None) -> Entries:
    """Recompute a log's chain; with ``signer``, re-sign every checkpoint over the head it now follows."""
    prev = GENESIS
    for seq, entry in enumerate(entries, start=1):
        entry.update(seq=seq, prev=prev)
        if signer is not None and entry.get("event") == "journal.checkpoint":
            entry.update(entries=seq - 1, head=prev, workspace=entries[0]["hash"] if seq > 1 else "")
            entry["signature"] = signer(str(entry["key_label"]), signed_bytes(entry), entry["public_key"]).hex()  # type: ignore[call-arg]
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
    return entries


def rewrite(path: Path, change: Callable[[Entries], None], *, chain: bool = True, signer: Signer | None = None) -> None:
    """Edit a hash-chained log's entries; ``chain`` recomputes the chain (a forger's edit), else it breaks."""
    entries = read_entries(path)
    change(entries)
    if chain:
        rechain(entries, signer)
    overwrite(path, b"".join(canonical(e) + b"\n" for e in entries))


def rewrite_checkpoints(workspace: Path) -> None:
    """Make checkpoints.jsonl say what the (re-signed) journal's checkpoints now say, re-chained."""
    fields = ("checkpoint", "workspace", "entries", "head", "reason", "anchors", "signed_at", "key_label",
              "public_key", "signature")  # fmt: skip
    now = {
        e["checkpoint"]: e for e in read_entries(workspace / "journal.jsonl") if e.get("event") == "journal.checkpoint"
    }

    def change(entries: Entries) -> None:
        for entry in entries:
            entry.update({k: now[entry["checkpoint"]][k] for k in fields})

    rewrite(workspace / "checkpoints.jsonl", change)


def keeping(wanted: Callable[[dict[str, Any]], bool]) -> Callable[[Entries], None]:
    def change(entries: Entries) -> None:
        entries[:] = [e for e in entries if wanted(e)]

    return change


def first(entries: Entries, **match: Any) -> dict[str, Any]:
    return next(e for e in entries if all(e.get(k) == v for k, v in match.items()))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- a PIN holder's edits, run as ``python -m tests.support.tamper WHAT WORKSPACE [ARGS]`` (the token opens
# in a process of its own: one SoftHSM2 configuration per process) -------------------------------------------
def _token_signer(workspace: Path) -> Signer:
    """Signs with a key of any of the workspace's tokens, opened with the PIN its deposited shares rebuild
    (what an insider holding the PIN can do); a label found on several tokens signs with the first."""
    from ceremony.keys.custody import activation_secret
    from ceremony.keys.signatures import sign
    from ceremony.record.workspace import Workspace

    ws = Workspace.open(workspace)
    stores = [ws.key_store]
    for folder in sorted((workspace / "secrets" / "shares").glob("*.user-pin")):
        label = folder.name.removesuffix(".user-pin")
        if label != ws.token_label:
            stores.append(ws.token_store(label, activation_secret(folder)))

    def signer(label: str, data: bytes, public_key: str | None = None) -> bytes:
        from cryptography.hazmat.primitives import serialization

        for store in stores:
            if label not in store.labels():
                continue
            key = store.load(label)
            der = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if public_key is None or der.hex() == public_key:
                return sign(key, data)
        raise LookupError(f"no token holds {label} with that public key")

    return signer  # type: ignore[return-value]


def resign_journal(workspace: Path, change: str) -> None:
    """Re-chain the journal after ``change`` (``approver``: an issuance's approver edited; ``backdate``: every
    entry 30 days earlier) and re-sign every checkpoint with the token keys."""
    from datetime import datetime, timedelta

    signer = _token_signer(workspace)

    def edit(entries: Entries) -> None:
        if change == "approver":
            first(entries, event="certificate.issue")["approved_by"] = "alice"
        elif change == "backdate":
            for entry in entries:
                for field in ("time", "signed_at"):
                    if field in entry:
                        entry[field] = (datetime.fromisoformat(entry[field]) - timedelta(days=30)).isoformat()

    rewrite(workspace / "journal.jsonl", edit, signer=signer)
    rewrite_checkpoints(workspace)


def reseal(workspace: Path, transcript: Path, reattest: bool) -> None:
    """Edit a step of a sealed transcript, re-chain it, re-seal it with its seal key, fix the sidecar and the
    inventory's hash; with ``reattest``, every participant re-attests with the key files in secrets/."""
    import hashlib

    from ceremony.model.people import load_register
    from ceremony.procedures.attestation import attestations_path, load_attestation_key, participants, sign_transcript
    from ceremony.record.transcript import read_aloud

    signer = _token_signer(workspace)
    entries = read_entries(transcript)
    seal = entries.pop()
    step = first(entries, event="step")
    step["actors"] = [*step["actors"], "mallory"]
    rechain(entries)
    head = entries[-1]["hash"]
    label = str(seal["key_label"])
    seal.update(sealed_hash=head, entries=len(entries), signature=signer(label, bytes.fromhex(head)).hex(),
                words=read_aloud(bytes.fromhex(head)))  # fmt: skip
    entries.append(seal)
    rechain(entries)
    overwrite(transcript, b"".join(canonical(e) + b"\n" for e in entries))
    sidecar = transcript.with_suffix(".seal.json")
    data = load_json(sidecar) | {
        "entries": seal["seq"],
        "hash": seal["hash"],
        "sealed_hash": head,
        "words": seal["words"],
    }
    overwrite(sidecar, json.dumps(data, indent=2).encode())
    digest = hashlib.sha256(transcript.read_bytes()).hexdigest()
    sql(
        workspace,
        "UPDATE ceremonies SET transcript_sha256 = ? WHERE transcript LIKE ?",
        (digest, f"%{transcript.name}"),
    )
    if reattest:
        register = load_register(workspace / "people.yaml")
        attestations_path(transcript).unlink(missing_ok=True)
        for pid in participants(entries[0]):
            key = load_attestation_key(workspace / "secrets" / "attestation" / f"{pid}.key")
            sign_transcript(transcript, pid, key, register)


def other_crl(workspace: Path) -> None:
    """Sign another CRL number 1 of the issuing CA, listing nothing, and put it in the recorded file's place."""
    from datetime import timedelta

    from cryptography import x509

    from ceremony.issue.crl import encode_tbs, sign_crl
    from ceremony.model.tbs import key_identifier
    from ceremony.record.workspace import Workspace

    ws = Workspace.open(workspace)
    ca = ws.inventory.ca("s1sp-issuing")
    certificate = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(ca.name))
    now = ws.clock.now().replace(microsecond=0)
    tbs = encode_tbs(
        certificate.subject, key_identifier(certificate.public_key()), 1, now, now + timedelta(days=7), b""
    )
    overwrite(workspace / "artifacts" / "crls" / "s1sp-issuing-1.crl", sign_crl(tbs, ws.key_store.load(ca.key_label)))


if __name__ == "__main__":
    import sys

    what, root = sys.argv[1], Path(sys.argv[2])
    if what == "resign-journal":
        resign_journal(root, sys.argv[3])
    elif what == "crl":
        other_crl(root)
    elif what == "reseal":
        reseal(root, Path(sys.argv[3]), sys.argv[4] == "reattest")
    else:
        raise SystemExit(f"unknown edit {what}")
