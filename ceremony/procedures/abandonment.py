"""Abandoning a ceremony that failed or was interrupted: the one way forward (``ceremony abandon``).

A ceremony that stopped unsealed leaves its transcript (a ceremony id is used once), possibly keys it generated
on the token, or a token it initialised whose PINs were never handed out in full. ``abandon`` records the
abandonment in that transcript: two registered witnesses confirm it, the token is activated with the custodians'
PIN shares (the activation path every ceremony uses; no PIN rests anywhere) to destroy the keys the transcript
says the ceremony generated, after checking each is the key it recorded; a token the ceremony initialised is
deleted (SoftHSM2; an HSM's token is re-initialised by its security officer, and the output says so). The
transcript gets an ``abandon`` entry and is sealed as abandoned; the journal records the abandonment. A new
ceremony file, with a new ceremony id, then runs clean, and the compliance checks show the episode as a recorded
deviation (CER-11), not an orphan key (KEY-03).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError, TokenError
from ceremony.keys.store import KeyStore
from ceremony.model.ceremony_file import CEREMONY_ID
from ceremony.model.events import Abandon, Action, CeremonyAbandon, Event
from ceremony.model.people import Register
from ceremony.procedures.activation import presented_pin
from ceremony.procedures.base import SEAL_KEY, _lock_holder, _spki_sha256
from ceremony.procedures.consoles import Console
from ceremony.record.checkpoints import write_checkpoint
from ceremony.record.timestamps import stamp_pending
from ceremony.record.transcript import Transcript, read_entries, verify_chain
from ceremony.record.workspace import Workspace, activation_purpose

#: How many registered people confirm an abandonment (dual control over destroying what a ceremony made).
WITNESSES = 2
#: The seal's key label when no token key can seal (the ceremony's token is the one deleted).
ONE_TIME_KEY = "one-time"
#: The ceremony types whose run initialises a token (the token they name is theirs to delete).
_INITIALISING = ("token-init", "key-restore")


@dataclass
class Abandoned:
    """What an abandonment did, for the officer and ``--json``."""

    ceremony_id: str
    type: str
    transcript: Path
    reason: str
    failure: str
    witnesses: list[str]
    words: str
    destroyed: list[dict[str, Any]] = field(default_factory=list)
    tokens_deleted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ceremony_id": self.ceremony_id,
            "type": self.type,
            "transcript": str(self.transcript),
            "reason": self.reason,
            "failure": self.failure,
            "witnesses": self.witnesses,
            "destroyed": self.destroyed,
            "tokens_deleted": self.tokens_deleted,
            "removed": self.removed,
            "by_hand": self.by_hand,
            "words": self.words,
        }

    def render(self) -> str:
        lines = [
            f"ceremony {self.ceremony_id} ({self.type}) abandoned: {self.reason}",
            f"  failure:   {self.failure}",
            f"  witnesses: {', '.join(self.witnesses)}",
        ]
        lines += [f"  destroyed: key {d['key_label']!r} on token {d['token']!r}" for d in self.destroyed if d["gone"]]
        lines += [f"  deleted:   token {label!r}" for label in self.tokens_deleted]
        lines += [f"  removed:   {path}" for path in self.removed]
        lines += [f"  BY HAND:   {todo}" for todo in self.by_hand]
        lines += [
            f"transcript {self.transcript} sealed as abandoned; read aloud: {self.words}",
            "next: give the corrected ceremony file a new ceremony_id, have it approved, and run it",
        ]
        return "\n".join(lines)


def _check_witnesses(witnesses: list[str], register: Register) -> None:
    for pid in witnesses:
        if pid not in register.people:
            raise InputError(f"--witness: {pid!r} is not in the participant register")
    twice = sorted({pid for pid in witnesses if witnesses.count(pid) > 1})
    if twice:
        raise InputError(f"--witness: {', '.join(twice)} given twice; {WITNESSES} different people confirm")
    if len(witnesses) < WITNESSES:
        raise InputError(f"--witness: an abandonment is confirmed by {WITNESSES} witnesses (got {len(witnesses)})")


def _open_transcript(ws: Workspace, ceremony_id: str) -> tuple[Transcript, list[dict[str, Any]]]:
    if not CEREMONY_ID.match(ceremony_id):
        raise InputError(f"CEREMONY_ID: {ceremony_id!r} is not a ceremony id (3-64 lower-case letters, digits, '-')")
    transcript = Transcript(ws.transcripts_dir / f"{ceremony_id}.jsonl", ws.clock)
    if not transcript.path.is_file():
        raise InputError(f"no transcript of ceremony {ceremony_id} in {ws.transcripts_dir}")
    status = verify_chain(transcript.path)
    if not status.ok:
        raise StateError(f"{transcript.path}: {status.error}; an abandonment is recorded only in an intact transcript")
    entries = read_entries(transcript.path)
    if any(e.get("event") == Event.SEAL for e in entries) or transcript.seal_path.exists():
        how = "as abandoned" if any(e.get("event") == Event.ABANDON for e in entries) else "(it finished)"
        raise InputError(f"ceremony {ceremony_id} is sealed {how}; only an unsealed ceremony is abandoned")
    if not entries or entries[0].get("event") != Event.CEREMONY_START:
        raise StateError(f"{transcript.path}: does not begin with the ceremony's start")
    return transcript, entries


def _failure(entries: list[dict[str, Any]]) -> str:
    failed = [e for e in entries if e.get("event") == Event.STEP_FAILED]
    if failed:
        return f"step {failed[-1]['step']} failed: {failed[-1]['message']}"
    steps = [str(e["step"]) for e in entries if e.get("event") == Event.STEP]
    return f"interrupted after step {steps[-1]}" if steps else "interrupted before its first step was recorded"


def _lock_of(ws: Workspace, token_label: str | None, ceremony_id: str) -> Path | None:
    """The ceremony's own stale token lock, to remove; a lock a running process holds refuses the abandonment."""
    if token_label is None:
        return None
    path = ws.root / "locks" / f"token-{token_label}.lock"
    if not (path.exists() or path.is_symlink()):
        return None
    holder = _lock_holder(path)
    if f"ceremony {ceremony_id} (" not in holder:
        return None  # another ceremony's lock: not this abandonment's to touch
    if not holder.startswith("a stale lock"):
        raise StateError(f"{holder}: stop that run (shut its notebook's kernel down) before abandoning it")
    return path


def _generated(entries: list[dict[str, Any]], token_label: str) -> list[dict[str, Any]]:
    """The key pairs the transcript says this ceremony generated: label and public key digest (the key map)."""
    return [
        {"token": token_label, "key_label": str(e["details"]["key_label"]), "spki_sha256": e["outputs"]["public_key"]}
        for e in entries
        if e.get("event") == Event.STEP and e.get("step") == Action.KEY_GENERATE
    ]


def _initialised_elsewhere(ws: Workspace, token_label: str, ceremony_id: str) -> bool:
    """Whether another transcript initialised ``token_label`` (then the token is not this ceremony's)."""
    for path in sorted(ws.transcripts_dir.glob("*.jsonl")):
        if path.stem == ceremony_id or path.name.endswith(".attestations.jsonl"):
            continue
        for entry in read_entries(path):
            details = entry.get("details") or {}
            if entry.get("step") == Action.TOKEN_INITIALISE and details.get("token") == token_label:
                return True
    return False


def _activate(ws: Workspace, token_label: str, console: Console) -> tuple[KeyStore, dict[str, str]]:
    """Log in to the token to destroy keys. A live workspace (or anyone at the keyboard): m custodians present
    their PIN shares, each checked against the split its token-initialisation recorded, as ``ceremony activate``
    does. An unattended run of a trial workspace: its own PIN source (environment, PIN file, deposited shares)."""
    if not ws.live and not console.attended:
        from ceremony.keys.agent import AgentKeyStore

        store = ws.key_store
        if isinstance(store, AgentKeyStore):
            raise TokenError(
                f"token {token_label!r} is open through an activation session, which cannot destroy keys; end it "
                "(`ceremony activate --end`), then abandon the ceremony"
            )
        return store, {}
    pin, shares, _ = presented_pin(ws, token_label, console)
    return ws.token_store(token_label, pin), shares


def _destroy(ws: Workspace, store: KeyStore, key: dict[str, Any], done: Abandoned) -> None:
    label, token = key["key_label"], key["token"]
    record = dict(key)
    if label not in store.labels():
        record |= {"gone": True, "note": "not on the token"}
    elif _spki_sha256(store.load(label).public_key()) != key["spki_sha256"]:
        record |= {"gone": False, "note": "on the token, but not the key this ceremony generated: left in place"}
        done.by_hand.append(f"key {label!r} on token {token!r} is not the key the transcript recorded; check it")
    else:
        store.destroy(label)
        gone = label not in store.labels()
        record |= {"gone": gone, "note": "destroyed" if gone else "still on the token after its destruction"}
        if not gone:
            raise TokenError(f"key {label!r} is still on token {token!r} after its destruction")
    with ws.inventory.transaction() as db:
        ws.inventory.key_destroyed(db, token, label, ws.clock.now().isoformat(timespec="microseconds"))
    done.destroyed.append(record)


def _delete_token(ws: Workspace, token_label: str, keys: list[str], done: Abandoned) -> None:
    """Delete a token the ceremony initialised, and what rests in the workspace of its PIN shares."""
    ks = ws.config.key_store
    if ks.kind == "pkcs11":
        from ceremony.keys.pkcs11 import delete_softhsm_token, is_softhsm

        assert ks.module is not None
        if not is_softhsm(ks.module) or ws.softhsm_conf is None:
            done.by_hand.append(
                f"token {token_label!r} on {ks.module}: re-initialise it with the HSM's security-officer procedure "
                "(or its factory reset) before a new token-init; the workbench deletes only SoftHSM2 tokens"
            )
            return
        if "key_store" in ws.__dict__:
            ws.key_store.close()
            del ws.__dict__["key_store"]
        if not delete_softhsm_token(ks.module, token_label, ws.softhsm_conf):
            raise TokenError(f"token {token_label!r} is still present after its deletion")
    else:
        ws.discard(ws.software_dir(token_label))
    done.tokens_deleted.append(token_label)
    now = ws.clock.now().isoformat(timespec="microseconds")
    with ws.inventory.transaction() as db:
        for label in {SEAL_KEY, *keys}:
            ws.inventory.key_destroyed(db, token_label, label, now)
    for purpose in (activation_purpose(token_label), f"{token_label}.so-pin"):
        deposited = ws.shares_dir(purpose)
        if deposited.is_dir():
            done.removed.append(ws.discard(deposited))


def _confirmations(console: Console, text: str, witnesses: list[str]) -> dict[str, str]:
    """Each witness confirms at the console (attended); unattended, the options name them."""
    confirmed: dict[str, str] = {}
    for pid in witnesses:
        who = console.confirm("abandon", text, [pid])
        confirmed[pid] = "confirmed at the console" if who else "named with --witness (unattended)"
    return confirmed


def abandon(
    ws: Workspace,
    ceremony_id: str,
    *,
    witnesses: list[str],
    reason: str | None,
    console: Console,
    register: Register,
) -> Abandoned:
    """Abandon the unsealed ceremony ``ceremony_id``: destroy on the token what it created, record the abandonment
    in its transcript (sealed as abandoned) and the journal. Bad input changes nothing."""
    _check_witnesses(witnesses, register)
    transcript, entries = _open_transcript(ws, ceremony_id)
    start = entries[0]
    kind, spec = str(start.get("type")), dict(start.get("ceremony") or {})
    token_label = (spec.get("token") or {}).get("label")
    lock = _lock_of(ws, token_label, ceremony_id)
    failure = _failure(entries)
    done = Abandoned(ceremony_id, kind, transcript.path, reason or failure, failure, witnesses, words="")
    issued = [e for e in entries if e.get("event") == Event.STEP and e.get("step") == Action.CERTIFICATE_ISSUE]
    if issued:
        raise StateError(
            f"ceremony {ceremony_id} issued a CA certificate before it stopped; a certificate is not undone by "
            "abandoning its ceremony: revoke it, and destroy its key in a key-destruction ceremony"
        )
    keys = _generated(entries, str(token_label)) if token_label else []
    delete = (
        kind in _INITIALISING
        and token_label is not None
        and not start.get("rehearsal")
        and ws.token_exists(token_label)
        and not _initialised_elsewhere(ws, token_label, ceremony_id)
    )
    text = f"abandon ceremony {ceremony_id}: " + (
        f"remove the whole token {token_label!r}" if delete else f"destroy {len(keys)} key(s) it generated on the token"
    )
    confirmed = _confirmations(console, text, witnesses)
    store: KeyStore | None = None
    activated: dict[str, str] = {}
    try:
        if keys and not delete and token_label is not None:
            if not ws.token_exists(token_label):
                done.by_hand.append(f"token {token_label!r} is not in this workspace: its keys were not checked")
            else:
                store, activated = _activate(ws, token_label, console)
                for key in keys:
                    _destroy(ws, store, key, done)
        if delete and token_label is not None:
            _delete_token(ws, token_label, [k["key_label"] for k in keys], done)
        for card in sorted(ws.share_cards_dir.glob(f"{ceremony_id}.*")):
            done.removed.append(ws.discard(card))
        transcript.append(
            Abandon(
                reason=done.reason,
                failure=failure,
                witnesses=witnesses,
                confirmed=confirmed,
                destroyed=done.destroyed,
                tokens_deleted=done.tokens_deleted,
                removed=done.removed,
                by_hand=done.by_hand,
                extra={"activated_by": activated} if activated else {},
            )
        )
        sealer: Any
        if store is not None and SEAL_KEY in store.labels():
            sealer, label = store.load(SEAL_KEY), SEAL_KEY
        else:  # no token key to seal with (its token is gone, or was never opened): the chain and witnesses vouch
            sealer, label = ec.generate_private_key(ec.SECP256R1()), ONE_TIME_KEY
        seal = transcript.seal(sealer, key_label=label, abandoned=True)
        if label == SEAL_KEY and not start.get("rehearsal"):
            write_checkpoint(
                ws.journal,
                sealer,
                key_label=label,
                reason=f"ceremony {ceremony_id} abandoned",
                anchors={
                    "transcript": transcript.path.relative_to(ws.root).as_posix(),
                    "sealed_hash": seal["sealed_hash"],
                },
            )
    finally:
        if store is not None and store is not ws.__dict__.get("key_store"):
            store.close()
    done.words = str(seal["words"])
    sealed = read_entries(transcript.path)
    ws.inventory.record_ceremony_seal(ceremony_id, sealed, _sha256(transcript.path))
    ws.journal.append(
        CeremonyAbandon(
            ceremony_id=ceremony_id,
            type=kind,
            reason=done.reason,
            witnesses=witnesses,
            destroyed=done.destroyed,
            tokens_deleted=done.tokens_deleted,
            transcript=transcript.path.relative_to(ws.root).as_posix(),
        )
    )
    if lock is not None:
        lock.unlink(missing_ok=True)
    stamp_pending(ws)  # the abandoned seal too, when the workspace names a TSA in reach (else the next online step)
    return done


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def console_for(ws: Workspace) -> Console:
    """The command line's console: a live workspace's custodians and witnesses answer at the terminal; a trial
    workspace's run is unattended (its witnesses named by option, its PIN from its trial source)."""
    from ceremony.procedures.consoles import Attended, Unattended

    return Attended() if ws.live else Unattended(ws)
