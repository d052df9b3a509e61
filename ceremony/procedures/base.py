"""The ceremony procedure base: a script of steps, each one transcript entry, and the seal.

Ceremony types subclass ``Procedure`` (ceremony/procedures.py, ceremony/symmetric_procedures.py).
The notebooks step through a procedure one step per cell (the markdown between them is what
the administrator reads aloud); ``run`` goes through the whole script at once. Either way each
step appends one entry to the ceremony's hash-chained transcript, and ``finish`` seals it with
the CA key the ceremony created or used (or, when there is none, the token's ceremony-seal key).

Secrets (PINs, the backup key-encryption key, shares) exist only in memory, on share cards and,
for unattended runs, as shares deposited under ``<workspace>/secrets/``. The transcript records
fingerprints, key check values and who acknowledged what.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization

from ceremony.errors import CeremonyError, ConfigError, InputError, StateError
from ceremony.faults import crash_point
from ceremony.fs import sha256_file, write_text_once
from ceremony.keys.custody import (
    CustodyError,
    Share,
    combine_presented,
    confirm,
    deposit,
    new_secret,
    pin_from_secret,
    split,
    write_share_card,
)
from ceremony.keys.store import KeyStore
from ceremony.model.ceremony_file import (
    CeremonyFile,
    Quorum,
    Token,
    require_approvals,
)
from ceremony.model.events import Action, StepFailed
from ceremony.model.people import operator
from ceremony.model.policy import PolicyParameters
from ceremony.procedures import display
from ceremony.procedures.consoles import Console
from ceremony.record.checkpoints import write_checkpoint
from ceremony.record.inventory import key_row
from ceremony.record.timestamps import stamp_pending
from ceremony.record.transcript import Transcript
from ceremony.record.workspace import Workspace, activation_purpose

#: The key every token gets at initialisation, to seal transcripts of ceremonies that use no CA key.
SEAL_KEY = "ceremony-seal"

#: How many times, in an attended ceremony, a custodian may type a share that is wrong before the step fails.
SHARE_TRIES = 3


# --- results ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a sealed ceremony produced: its transcript, read-aloud words and output files."""

    ceremony_id: str
    type: str
    transcript: Path
    rehearsal: bool
    words: str
    outputs: dict[str, Path] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ceremony_id": self.ceremony_id,
            "type": self.type,
            "transcript": str(self.transcript),
            "rehearsal": self.rehearsal,
            "words": self.words,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }


def _spki_sha256(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _lock_holder(path: Path) -> str:
    """Who holds a ceremony lock, and whether they are still there."""
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
        pid, host = int(held["pid"]), str(held["host"])
        who = f"ceremony {held['ceremony_id']} ({held['type']}, pid {pid} on {host}, since {held['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{path} exists but is not a lock this tool wrote; check it, then remove it"
    alive = True
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
    if alive:
        return f"token {path.stem.removeprefix('token-')} is in use by {who}; one ceremony at a time"
    return (
        f"a stale lock: {who} ended without finishing (its process is gone); check its transcript, then remove {path}"
    )


# --- the procedure base ----------------------------------------------------------------------
class Procedure:
    """An open ceremony: its file, workspace (live, or the rehearsal area), transcript and script."""

    TYPE: ClassVar[str]
    #: The steps of the script, in order: (step id, what the administrator announces).
    SCRIPT: ClassVar[tuple[tuple[str, str], ...]]

    def __init__(
        self,
        ceremony: CeremonyFile,
        ws: Workspace,
        *,
        rehearsal: bool,
        console: Console,
        approved_by: list[str],
        policy: PolicyParameters,
    ) -> None:
        self.ceremony = ceremony
        self.spec: Any = ceremony.spec
        self.ws = ws
        self.rehearsal = rehearsal
        self.console = console
        self.approved_by = approved_by
        self.policy = policy
        self.transcript = Transcript(ws.transcripts_dir / f"{self.spec.ceremony_id}.jsonl")
        self.done: list[str] = []
        self.locked: Path | None = None
        self.outputs: dict[str, Path] = {}
        self.store: KeyStore | None = None
        self.seal_with: tuple[KeyStore, str] | None = None
        #: The purpose of the split being handed out (its cards' names).
        self._splitting = ""
        #: Each finished step's transcript entry, and what it showed: a re-run shows it again, doing nothing.
        self.results: dict[str, tuple[dict[str, Any], list[str]]] = {}
        #: The step running now (named in its errors and retries), and the step the ceremony ended at.
        self.running: str | None = None
        self.failed: str | None = None
        self.outcome: Outcome | None = None

    # --- bookkeeping ------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """A live workspace's ceremony: attended only, and no share, component or PIN left at rest."""
        return self.ws.config.purpose == "live"

    @property
    def trial_mark(self) -> str | None:
        """What every output of a demo, rehearsal or test workspace says it is (None: live)."""
        return None if self.live else f"{self.ws.config.purpose.upper()} WORKSPACE"

    @property
    def custodians(self) -> list[str]:
        return list(self.spec.participants.custodians)

    @property
    def quorum(self) -> Quorum:
        return self.spec.quorum  # type: ignore[no-any-return]

    @property
    def token(self) -> Token:
        return self.spec.token  # type: ignore[no-any-return]

    @property
    def operators(self) -> list[str]:
        return list(self.spec.participants.operators)

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.ws.root))

    def _output(self, name: str, path: Path) -> dict[str, str]:
        self.outputs[name] = path
        return {name: sha256_file(path)}

    def _gate(self, step: str, text: str, allowed: list[str]) -> dict[str, Any]:
        who = self.console.confirm(step, text, allowed)
        return {"confirmed_by": who} if who else {"confirmed_by": None, "attended": False}

    def _record(self, step: str, action: str, actors: list[str], **kw: Any) -> dict[str, Any]:
        return self.transcript.step(step, action, actors=actors, **kw)

    def expected_outputs(self) -> dict[str, str]:
        """The files this ceremony writes, by name, relative to the workspace."""
        return {}

    def check(self) -> None:
        """Refuse, before anything is written, a file this workspace cannot run as written: a token
        module that is not the workspace's, or outputs other than what this procedure writes."""
        self.transcript.ensure_new()  # a ceremony id is used once: said first, with the way forward
        if self.live and not self.console.attended:
            raise ConfigError(
                f"{self.ceremony.path}: {self.ws.root} is a live workspace: its ceremonies are run attended "
                "(JupyterLab or a terminal), with the custodians presenting their shares; unattended runs are for "
                "demo, rehearsal and test workspaces"
            )
        if getattr(self.spec, "token", None) is not None:
            self._module()
        expected = self.expected_outputs()
        for name, path in self.spec.outputs.items():
            if name not in expected:
                allowed = ", ".join(expected) or "none"
                raise ConfigError(f"{self.ceremony.path}: outputs.{name}: a {self.TYPE} ceremony writes {allowed}")
            if path != expected[name]:
                raise ConfigError(f"{self.ceremony.path}: outputs.{name}: this ceremony writes {expected[name]}")
        for name, path in expected.items():  # write-once: found now, not after the key is generated
            if os.path.lexists(self.ws.root / path):
                raise StateError(
                    f"{self.ceremony.path}: outputs.{name}: {path} already exists in {self.ws.root}; outputs are "
                    "written once: change the file so that it writes new ones"
                )

    def _lock_path(self) -> Path | None:
        token = getattr(self.spec, "token", None)
        return None if token is None else self.ws.root / "locks" / f"token-{token.label}.lock"

    def _lock(self) -> None:
        """One ceremony per token at a time. The lock names its owner; a lock whose process is gone is
        reported as stale and left for a person to remove, never broken silently."""
        path = self._lock_path()
        if path is None:
            return
        path.parent.mkdir(exist_ok=True)
        since = self.ws.clock.now().isoformat(timespec="seconds")
        owner = {"ceremony_id": self.spec.ceremony_id, "type": self.TYPE, "pid": os.getpid(),
                 "host": socket.gethostname(), "since": since}  # fmt: skip
        if path.exists() or path.is_symlink():
            raise StateError(_lock_holder(path))
        try:
            write_text_once(path, json.dumps(owner), what="ceremony locks")
        except StateError:  # taken between the look and the create
            raise StateError(_lock_holder(path)) from None
        self.locked = path

    def _unlock(self) -> None:
        path = self.locked
        if path is not None:
            path.unlink(missing_ok=True)
            self.locked = None

    def start(self) -> None:
        self.check()
        self.transcript.ensure_new()
        self._stamp_pending()  # the next online step after a seal made offline (ceremony.record.timestamps)
        self._lock()
        spec = self.spec
        kind = self.ws.config.key_store.kind
        started = self.transcript.start(
            spec.ceremony_id,
            self.TYPE,
            {
                "file": self.ceremony.path.name,
                "file_sha256": self.ceremony.sha256,
                "approved_by": self.approved_by,
                "approvals_required": self.policy.ceremony.approvals_required,
                "rehearsal": self.rehearsal,
                "attended": self.console.attended,
                "ceremony": spec.model_dump(),
                "key_store": kind,
                "workspace_purpose": self.ws.config.purpose,
                "script": [step for step, _ in self.SCRIPT],
                "run_by": operator(),
            },
        )
        self.ws.inventory.record_ceremony_start(
            started, file=self.ceremony.path.name, transcript=os.path.relpath(self.transcript.path, self.ws.root)
        )
        if self.rehearsal:
            self.transcript.deviation(
                "rehearsal: run in the rehearsal area against a throwaway token",
                "practice run; nothing here is live",
                [spec.participants.administrator],
            )
            missing = require_approvals(self.ceremony, self.approved_by, self.policy, rehearsal=True)
            if missing:
                self.console.show(missing)
                self.transcript.deviation(missing, "rehearsal", [spec.participants.administrator])
        today = self.ws.clock.now().date()
        if today != spec.day:
            self.transcript.deviation(
                f"run on {today.isoformat()}; the ceremony file is dated {spec.date}",
                "the register and policy checks used the file's date",
                [spec.participants.administrator],
            )
        if kind == "software" and getattr(spec, "token", None) is not None:
            self.transcript.deviation(
                f"the software key store stands in for token {spec.token.label!r}",
                "SoftHSM2 is not installed on this machine; keys are encrypted PKCS#8 files, not token objects",
                [spec.participants.administrator],
            )

    def step(self, name: str) -> dict[str, Any]:
        """Run the next step of the script (steps run in order, each once).

        A step already done is not run again: its recorded result is shown again (an officer who presses
        Shift+Enter twice in JupyterLab sees the step's output, not an error) and nothing is recorded or
        done on the token.
        """
        script = [s for s, _ in self.SCRIPT]
        if name not in script:
            raise InputError(f"{self.TYPE} has no step {name!r}; its script is {', '.join(script)}")
        if name in self.results:
            recorded, shown = self.results[name]
            self.console.show(
                f"step {name!r} was already done at {display.recorded_at(recorded)} by {display.done_by(recorded)}; "
                "it is not run again and nothing new is recorded. Its result:\n" + "\n".join(shown)
            )
            return recorded
        self._refuse_ended()
        expected = script[len(self.done)] if len(self.done) < len(script) else None
        if name != expected:
            raise StateError(f"step {name!r} is out of order; the next step is {expected or 'finish (seal)'}")
        self.console.show(f"step {len(self.done) + 1}/{len(script)}: {dict(self.SCRIPT)[name]}")
        self.running = name
        try:
            entry: dict[str, Any] = getattr(self, "do_" + name.replace("-", "_"))()
        except CeremonyError as exc:
            self._unlock()  # the ceremony ends here, unsealed; the token is free for the next one
            # On record before the error travels on; messages never carry secrets.
            self.transcript.append(StepFailed(step=name, error=type(exc).__name__, message=exc.message))
            self.failed = name
            display.mark_step(exc, name)
            raise
        finally:
            self.running = None
        self.done.append(name)
        crash_point(f"step:{name}")
        shown = display.step_result(entry)
        self.results[name] = (entry, shown)
        self.console.show("\n".join(shown))
        return entry

    def _refuse_ended(self) -> None:
        """After a failed step the ceremony is over (unsealed, its token unlocked): nothing more runs in it."""
        if self.failed is not None:
            cid = self.spec.ceremony_id
            raise StateError(
                f"ceremony {cid} ended unsealed when step {self.failed!r} failed (its transcript "
                f"{self.transcript.path.name} keeps the failure); nothing more runs in it: `ceremony abandon {cid}` "
                "(two witnesses confirming) clears what it made, then run a new ceremony file"
            )

    def describe(self) -> str:
        """What is about to happen, for the administrator to read out before the first step."""
        spec, seats = self.spec, self.spec.participants
        mark = "" if self.trial_mark is None or self.rehearsal else f"{self.trial_mark} (not a live PKI): "
        lines = [
            f"{mark}{'REHEARSAL of ' if self.rehearsal else ''}{self.TYPE} ceremony {spec.ceremony_id} ({spec.date})",
            f"file {self.ceremony.path.name} sha256 {self.ceremony.sha256}",
            f"approved by: {', '.join(self.approved_by) or 'nobody'}",
            f"administrator {seats.administrator}; operators {', '.join(seats.operators)}; "
            f"custodians {', '.join(seats.custodians) or 'none'}; witnesses {', '.join(seats.witnesses)}",
            f"recording {spec.recording.video_id}; transcript {self.transcript.path}",
            "script: " + "; ".join(f"{i}. {step}" for i, (step, _) in enumerate(self.SCRIPT, start=1)),
        ]
        return "\n".join(lines)

    def deviation(self, what: str, why: str, acknowledged_by: list[str]) -> dict[str, Any]:
        """Record a departure from the script (everyone present acknowledges it)."""
        return self.transcript.deviation(what, why, acknowledged_by)

    def finish(self) -> Outcome:
        """Seal the transcript with the ceremony's key; returns the outcome with the read-aloud words.

        Called again, it shows the seal already made (and its words) and seals nothing.
        """
        if self.outcome is not None:
            sealed = self.transcript.entries()[-1]
            self.console.show(
                f"the ceremony was already sealed at {display.recorded_at(sealed)}: {self.transcript.path}\n"
                f"read aloud: {self.outcome.words}"
            )
            return self.outcome
        self._refuse_ended()
        remaining = [s for s, _ in self.SCRIPT][len(self.done) :]
        if remaining:
            raise StateError(f"cannot seal: steps not run: {', '.join(remaining)}")
        if self.seal_with is None:
            raise StateError("cannot seal: the ceremony has no key to seal with")
        missing = [name for name in self.spec.outputs if name not in self.outputs]
        if missing:
            raise StateError(f"cannot seal: declared outputs not written: {', '.join(missing)}")
        store, label = self.seal_with
        key = store.load(label)
        entry = self.transcript.seal(key, key_label=label)
        if not self.rehearsal:  # the rehearsal area's journal is throwaway; a live seal anchors the journal
            write_checkpoint(
                self.ws.journal,
                key,
                key_label=label,
                reason=f"ceremony {self.spec.ceremony_id} sealed",
                anchors={
                    "transcript": self.transcript.path.relative_to(self.ws.root).as_posix(),
                    "sealed_hash": entry["sealed_hash"],
                },
            )
        self._unlock()
        self.ws.inventory.record_ceremony_seal(
            self.spec.ceremony_id,
            self.transcript.entries(),
            hashlib.sha256(self.transcript.path.read_bytes()).hexdigest(),
        )
        self.console.show(f"sealed {self.transcript.path}\nread aloud: {entry['words']}")
        self._stamp_pending()  # this seal and its checkpoint, when the workspace names a TSA in reach
        self.outcome = Outcome(
            self.spec.ceremony_id, self.TYPE, self.transcript.path, self.rehearsal, entry["words"], self.outputs
        )
        return self.outcome

    def _stamp_pending(self) -> None:
        """Timestamp what is sealed and not yet stamped (nothing when the workspace names no TSA), saying what."""
        lines = stamp_pending(self.ws).lines()
        if lines:
            self.console.show("\n".join(lines))

    def run(self) -> Outcome:
        """Every step of the script, then the seal."""
        for name, _ in self.SCRIPT:
            self.step(name)
        return self.finish()

    # --- token and custody building blocks -------------------------------------------
    def _module(self) -> str | None:
        ks = self.ws.config.key_store
        if ks.kind != "pkcs11":
            return None
        if self.token.module != "softhsm" and self.token.module != ks.module:
            raise ConfigError(
                f"{self.ceremony.path}: token.module: {self.token.module} is not this workspace's module ({ks.module})"
            )
        return ks.module

    def _initialise_token(self, label: str) -> tuple[bytes, bytes | None]:
        """A new token (or software store) with a generated user PIN and SO PIN; returns their secrets."""
        from ceremony.keys.pkcs11 import init_softhsm_token

        if self.ws.token_exists(label):
            raise StateError(f"token {label!r} already exists in {self.ws.root}; a token is initialised once")
        user = new_secret(32)
        module = self._module()
        if module is None:
            self.ws.software_dir(label).mkdir(mode=0o700, parents=True)
            return user, None
        so = new_secret(32)
        token_dir = self.ws.root / "token"
        init_softhsm_token(
            token_dir, token_dir / "softhsm2.conf", label, pin_from_secret(so), pin_from_secret(user), module=module
        )
        return user, so

    def _split(self, purpose: str, secret: bytes) -> tuple[list[Share], dict[str, Path]]:
        """Split ``secret`` m-of-n among the custodians. In a trial workspace every share card is written at
        once; in a live one none is yet: :meth:`_distribute` writes each card in turn and removes it once its
        custodian has typed it back, so that no two cards (never a quorum) rest on the disk together."""
        shares = split(secret, self.quorum.m, self.custodians)
        self._splitting = purpose
        cards = {} if self.live else {s.custodian: self._card(purpose, s) for s in shares}
        return shares, cards

    def _card(self, purpose: str, share: Share) -> Path:
        q = self.quorum
        return write_share_card(
            self.ws.share_cards_dir,
            ceremony_id=self.spec.ceremony_id,
            purpose=purpose,
            share=share,
            m=q.m,
            n=q.n,
            bag=self.spec.bags.share_cards.get(share.custodian),
            rehearsal=self.rehearsal,
            trial=None if self.rehearsal else self.trial_mark,
        )

    def _split_record(self, purpose: str, shares: list[Share]) -> dict[str, Any]:
        return {
            "purpose": purpose,
            "m": self.quorum.m,
            "n": self.quorum.n,
            "shares": {s.custodian: s.fingerprint for s in shares},
            "share_card_bags": {s.custodian: self.spec.bags.share_cards.get(s.custodian) for s in shares},
        }

    def _distribute(self, shares: list[Share], cards: dict[str, Path]) -> dict[str, str]:
        """Each custodian types their share back in; it must match the fingerprint on record."""
        acknowledged: dict[str, str] = {}
        for share in shares:
            card = cards.get(share.custodian) or self._card(self._splitting, share)
            try:
                for tried in range(1, SHARE_TRIES + 1):
                    entered = self.console.reenter_share(share.custodian, card)
                    if confirm(entered, share.fingerprint):
                        break
                    wrong = f"{share.custodian}'s share as typed back does not match its card"
                    if not self.console.attended or tried == SHARE_TRIES:
                        tries = f" ({tried} tries)" if tried > 1 else ""
                        raise CustodyError(f"{wrong}{tries}", custodian=share.custodian)
                    self._try_again(wrong, f"{share.custodian}, type your share back in again", tried)
            finally:
                if self.live:
                    card.unlink(missing_ok=True)  # printed and typed back: the paper card is the share now
            acknowledged[share.custodian] = "re-entered and confirmed" if self.console.attended else "card read back"
        return acknowledged

    def _deposit(self, purpose: str, shares: list[Share]) -> dict[str, Any]:
        """Unattended runs only: rest m shares in ``secrets/`` so later unattended runs can use them."""
        if self.console.attended:
            return {"deposited": None}
        if self.live:
            raise StateError(f"{self.ws.root} is a live workspace: shares are never deposited in it")
        chosen = shares[: self.quorum.m]
        directory = self.ws.shares_dir(purpose)
        deposit(directory, chosen)
        return {"deposited": {"directory": self._rel(directory), "custodians": [s.custodian for s in chosen]}}

    def _new_token(self, label: str) -> dict[str, Any]:
        """Initialise a token, split its PINs among the custodians, confirm the cards, make its seal key."""
        user, so = self._initialise_token(label)
        record: dict[str, Any] = {"token": label, "key_store": self.ws.config.key_store.kind}
        purposes = [(activation_purpose(label), user)] + ([(f"{label}.so-pin", so)] if so is not None else [])
        for purpose, secret in purposes:
            shares, cards = self._split(purpose, secret)
            record[purpose] = {
                **self._split_record(purpose, shares),
                "acknowledged": self._distribute(shares, cards),
                **self._deposit(purpose, shares),  # unattended trial runs: the SO PIN's too (an SO reset's)
            }
        store = self.ws.token_store(label, pin_from_secret(user))
        sealer = store.generate(SEAL_KEY, "ec-p256")
        self._key_on_record(SEAL_KEY, sealer.public_key(), purpose="seal", origin="generated", token=label)
        record["seal_key"] = {"label": SEAL_KEY, "attributes": store.attributes(SEAL_KEY).record()}
        if label == self.ws.token_label:
            self.ws.use_key_store(store)
        self.store = store
        return record

    def _key_on_record(self, label: str, public: Any, *, purpose: str, origin: str, token: str | None = None) -> None:
        """The key inventory learns of a key pair this ceremony put on a token."""
        row = key_row(
            token or self.token.label,
            label,
            public,
            key_store=self.ws.config.key_store.kind,
            purpose=purpose,
            origin=origin,
            ceremony_id=self.spec.ceremony_id,
            created_at=self.ws.clock.now(),
        )
        with self.ws.inventory.transaction() as db:
            self.ws.inventory.record_key(db, row)

    def _activate(self, label: str) -> dict[str, Any]:
        """Log in to the token with the PIN m custodians' shares rebuild."""
        if self.rehearsal and not self.ws.token_exists(label):
            record = self._new_token(label)
            self._record(
                Action.REHEARSAL_TOKEN,
                f"throwaway token {label!r} initialised for the rehearsal",
                [self.spec.participants.administrator],
                details=record,
            )
        purpose = activation_purpose(label)
        presented = self.console.present_shares(purpose, self.custodians, self.quorum.m)
        secret, presented, retyped = self._rebuild(purpose, presented, _recorded_pin_split(self.ws, label))
        store = self.ws.token_store(label, pin_from_secret(secret))
        if label == self.ws.token_label:
            self.ws.use_key_store(store)
        self.store = store
        return self._record(
            Action.TOKEN_ACTIVATE,
            f"token {label!r} activated by {len(presented)} custodians' PIN shares",
            [c for c, _ in presented],
            details={
                "token": label,
                "shares_presented": {c: _fp(w) for c, w in presented},
                **({"shares_typed_again": retyped} if retyped else {}),
            },
        )

    def _try_again(self, wrong: str, ask: str, tried: int) -> None:
        """In an attended ceremony: say what was wrong, naming whose, and ask them to type it again."""
        where = f"step {self.running!r}: " if self.running else ""
        self.console.show(f"{where}{wrong} \u2014 {ask} (try {tried + 1} of {SHARE_TRIES})")

    def _rebuild(
        self, purpose: str, presented: list[tuple[str, str]], expected: dict[str, str] | None = None
    ) -> tuple[bytes, list[tuple[str, str]], dict[str, int]]:
        """The secret m custodians' shares rebuild. A wrong share is named by whose it is; attended, that
        custodian types it again (at most :data:`SHARE_TRIES` times in all) instead of the step failing.

        Returns:
            The secret, the shares that rebuilt it, and how many times each custodian typed theirs again.
        """
        retyped: dict[str, int] = {}
        for tried in range(1, SHARE_TRIES + 1):
            try:
                return combine_presented(presented, expected=expected), presented, retyped
            except CustodyError as exc:
                who = exc.custodian
                if who is None or not self.console.attended or tried == SHARE_TRIES:
                    raise
                self._try_again(exc.message, f"{who}, type your share again", tried)
                again = dict(self.console.present_shares(purpose, [who], 1)).get(who)
                if again is None:
                    raise
                presented = [(c, again if c == who else w) for c, w in presented]
                retyped[who] = retyped.get(who, 0) + 1
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _key_store(self) -> KeyStore:
        if self.store is None:
            raise StateError("the token is not activated")
        return self.store


def _recorded_pin_split(ws: Workspace, label: str) -> dict[str, str] | None:
    """custodian -> fingerprint of the PIN shares the token's initialisation handed out (None: not on record).

    Only used to name whose share is wrong when the shares do not rebuild the PIN."""
    from ceremony.procedures.activation import pin_split

    try:
        return pin_split(ws, label).shares
    except CeremonyError:
        return None


def _fp(words: str) -> str:
    from ceremony.keys.custody import share_fingerprint

    return share_fingerprint(words)
