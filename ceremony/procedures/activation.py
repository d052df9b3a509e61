"""Activation for daily work: m custodians present their PIN shares and the token opens for a bounded session.

``activate`` checks each presented share against the fingerprint its token-initialisation ceremony recorded,
rebuilds the PIN, and starts the session process (:mod:`ceremony.keys.agent`), handing it the PIN through a
pipe. The session process logs in, journals ``token.activated`` (who, until when, for how many signatures),
serves the workspace's commands and notebooks, and journals ``token.activation_ended`` when it expires, its
operations are used up, or an officer ends it (``ceremony activate --end``). The PIN is never written
anywhere. A session process that was killed cannot journal its end: the next activation, status or end
finds it gone and journals that.

The session process is :mod:`ceremony.record.activation_session` (started by ``activate``): a module of its own,
so that it starts without loading the procedures, the notebooks' machinery or the inventory.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ceremony.errors import InputError, StateError, TokenError
from ceremony.keys import agent
from ceremony.keys.custody import CustodyError, combine, pin_from_secret, share_fingerprint
from ceremony.model.events import Action, Event, TokenActivationEnded
from ceremony.model.policy import PolicyParameters, load_policy
from ceremony.procedures.consoles import Console
from ceremony.record.activation_session import refuse_unsuitable
from ceremony.record.transcript import read_entries, verify_chain, verify_transcript
from ceremony.record.workspace import Workspace, activation_purpose

#: How long ``activate`` waits for the session process to log in and listen.
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class PinSplit:
    """What the ceremony that last set a token's PIN recorded of its split (nothing secret)."""

    ceremony_id: str
    m: int
    shares: dict[str, str]  # custodian -> share fingerprint
    #: custodian -> tamper-evident bag of their share card, as that ceremony recorded them
    bags: dict[str, str | None] = field(default_factory=dict)
    #: When the split was recorded (the transcript entry's time).
    time: str = ""


#: The steps that set a token PIN and record its new split: initialisation (a rehearsal's throwaway token's too), a PIN
#: change, an SO reset.
PIN_SETTING_STEPS = (Action.TOKEN_INITIALISE, Action.REHEARSAL_TOKEN, Action.PIN_CHANGE, Action.PIN_RESET)


def so_purpose(token_label: str) -> str:
    """The share set of a token's security-officer PIN."""
    return f"{token_label}.so-pin"


def pin_splits(ws: Workspace, token_label: str, purpose: str | None = None) -> list[PinSplit]:
    """Every split of a token PIN on record (the user PIN unless ``purpose`` names another), oldest first.

    A split counts once its ceremony's transcript recorded it: the step that sets the PIN on the token
    records the split after the token accepted it. A transcript whose chain is broken, or whose seal does not
    verify, stops any activation.
    """
    purpose = purpose or activation_purpose(token_label)
    found: list[PinSplit] = []
    for path in sorted(ws.transcripts_dir.glob("*.jsonl")):
        if path.name.endswith(".attestations.jsonl"):
            continue
        entries = read_entries(path)
        for entry in entries:
            if entry.get("event") != Event.STEP or entry.get("step") not in PIN_SETTING_STEPS:
                continue
            split = (entry.get("details") or {}).get(purpose)
            if not isinstance(split, dict):
                continue
            # Intact, and its seal valid if sealed: a PIN change that set the PIN and then stopped, unsealed,
            # still tells which shares rebuild the PIN the token has now.
            sealed = any(e.get("event") == Event.SEAL for e in entries)
            if not verify_chain(path).ok or (sealed and not verify_transcript(path).ok):
                raise StateError(f"the transcript {path.name}, which set a PIN of token {token_label!r}, does not "
                                 "verify; no activation")  # fmt: skip
            found.append(
                PinSplit(
                    str(entries[0].get("ceremony_id")),
                    int(split["m"]),
                    dict(split["shares"]),
                    dict(split.get("share_card_bags") or {}),
                    str(entry.get("time") or ""),
                )  # fmt: skip
            )
    return sorted(found, key=lambda s: s.time)


def pin_split(ws: Workspace, token_label: str, purpose: str | None = None) -> PinSplit:
    """The current split of a token PIN (the user PIN unless ``purpose`` names another): the latest on record."""
    splits = pin_splits(ws, token_label, purpose)
    if not splits:
        raise StateError(
            f"no token-initialisation ceremony of token {token_label!r} is on record in {ws.transcripts_dir}; "
            "a token is activated with the shares its initialisation handed out"
        )
    return splits[-1]


def presented_pin(ws: Workspace, token_label: str, console: Console) -> tuple[str, dict[str, str], PinSplit]:
    """The token's user PIN from m custodians' shares presented at ``console``, each checked against the share
    fingerprint the token's initialisation recorded for that custodian; returns the PIN, custodian -> fingerprint
    and the split on record.

    Raises:
        CustodyError: a share is not the one recorded for the custodian who presented it.
    """
    split = pin_split(ws, token_label)
    presented = console.present_shares(activation_purpose(token_label), sorted(split.shares), split.m)
    shares: dict[str, str] = {}
    for custodian, words in presented:
        fingerprint = share_fingerprint(words)
        if split.shares.get(custodian) != fingerprint:
            raise CustodyError(
                f"{custodian}'s share is not the one recorded for them when the token's PIN was last set "
                f"({split.ceremony_id})"
            )
        shares[custodian] = fingerprint
    return pin_from_secret(combine([words for _, words in presented])), shares, split


def _limits(policy: PolicyParameters, minutes: int | None, operations: int | None) -> tuple[int, int]:
    limits = policy.activation
    minutes = limits.default_minutes if minutes is None else minutes
    operations = limits.default_operations if operations is None else operations
    if not 1 <= minutes <= limits.max_minutes:
        raise InputError(f"--minutes must be between 1 and {limits.max_minutes} (the policy's limit; got {minutes})")
    if not 1 <= operations <= limits.max_operations:
        raise InputError(
            f"--operations must be between 1 and {limits.max_operations} (the policy's limit; got {operations})"
        )
    return minutes, operations


def activate(
    ws: Workspace,
    console: Console,
    *,
    minutes: int | None = None,
    operations: int | None = None,
    policy: PolicyParameters | None = None,
) -> agent.Status:
    """Custodians present m PIN shares; the token opens for ``minutes`` or ``operations`` signatures."""
    minutes, operations = _limits(policy or load_policy(), minutes, operations)
    label = refuse_unsuitable(ws)
    path = agent.socket_path(ws.root)
    running = agent.status(path)
    if running is not None:
        raise StateError(
            f"token {label!r} is already activated (session {running.session}, until {running.expires}); "
            "end it first with `ceremony activate --end`"
        )
    _journal_lost_sessions(ws)
    pin, shares, split = presented_pin(ws, label, console)
    header = {
        "pin": pin,
        "session": secrets.token_hex(8),
        "custodians": sorted(shares),
        "shares": shares,
        "m": split.m,
        "minutes": minutes,
        "operations": operations,
    }
    _start(ws, header)
    del pin, header
    started = agent.status(path)
    if started is None:
        raise TokenError(f"the activation session of token {label!r} started but does not answer at {path}")
    console.show(
        f"token {label!r} activated by {', '.join(shares)} until {started.expires} "
        f"or {started.operations_left} signatures (session {started.session})"
    )
    return started


def _start(ws: Workspace, header: dict[str, Any]) -> None:
    """Start the session process and hand it the PIN through its standard input; wait until it listens."""
    env = {k: v for k, v in os.environ.items() if k not in ("CEREMONY_TOKEN_PIN",)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ceremony.record.activation_session", str(ws.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the command that started it, and its terminal
        env=env,
        close_fds=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(header).encode() + b"\n")
        process.stdin.close()
    except BrokenPipeError:
        pass
    ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT)
    line = process.stdout.readline().decode("utf-8", "replace").strip() if ready else ""
    process.stdout.close()
    if line == "ready":
        return
    if process.poll() is None:
        process.kill()
    raise TokenError(
        line.removeprefix("error ") if line.startswith("error ") else "the activation session did not start"
    )


def status(ws: Workspace) -> agent.Status | None:
    """The workspace's running activation session, if any (a session found gone is journalled)."""
    running = agent.status(agent.socket_path(ws.root))
    if running is None:
        _journal_lost_sessions(ws)
    return running


def end(ws: Workspace) -> bool:
    """End the running activation session (it journals its own end); False when none was running."""
    path = agent.socket_path(ws.root)
    running = agent.status(path)
    ended = agent.end(path)
    if ended:
        # The session journals its end as it leaves, normally as the journal's last entry: wait for it (5 s at
        # most), reading the whole journal only now and then (something else may have been journalled after it).
        deadline, polls = time.monotonic() + 5, 0
        while time.monotonic() < deadline and not _ended_last(ws, running):
            polls += 1
            if polls % 50 == 0 and not _open_sessions(ws):
                break
            time.sleep(0.01)
    else:
        _journal_lost_sessions(ws)
    return ended


def _ended_last(ws: Workspace, running: agent.Status | None) -> bool:
    last = ws.journal.last_entry() or {}
    return (
        running is not None
        and last.get("event") == Event.TOKEN_ACTIVATION_ENDED
        and str(last.get("session")) == running.session
    )


def _open_sessions(ws: Workspace) -> dict[str, dict[str, Any]]:
    opened: dict[str, dict[str, Any]] = {}
    for entry in ws.journal.entries():
        if entry.get("event") == Event.TOKEN_ACTIVATED:
            opened[str(entry["session"])] = entry
        elif entry.get("event") == Event.TOKEN_ACTIVATION_ENDED:
            opened.pop(str(entry.get("session")), None)
    return opened


def _journal_lost_sessions(ws: Workspace) -> None:
    """Sessions the journal shows open while none answers ended without saying so (killed, machine off)."""
    if agent.status(agent.socket_path(ws.root)) is not None:
        return
    for session, entry in _open_sessions(ws).items():
        ws.journal.append(
            TokenActivationEnded(
                session=session,
                token_label=str(entry["token_label"]),
                reason="gone (not journalled by the session)",
                operations=None,
            )  # fmt: skip
        )


def daily(ws: Workspace, console: Console | None = None) -> str:
    """For notebooks 30 and 40: how this workspace's token is opened for the work that follows.

    A running activation session serves it. Without one, a live workspace's custodians activate the token
    at the console's prompts when people are at the keyboard (JupyterLab); an unattended run (papermill) of a
    live workspace is refused: its custodians activate first (``ceremony activate``)."""
    from ceremony.procedures.consoles import kernel_console

    running = agent.status(agent.socket_path(ws.root))
    if running is None and ws.live:
        console = console or kernel_console(ws)
        if console.attended:
            running = activate(ws, console)
    if running is not None:
        return (
            f"token {running.token_label!r} activated (session {running.session}) until {running.expires}, "
            f"{running.operations_left} signatures left"
        )
    if ws.live:
        raise TokenError(
            f"token {ws.token_label!r} is not activated: custodians activate it with "
            f"`ceremony --workspace {ws.root} activate` (a live workspace keeps no PIN)"
        )
    return f"{ws.config.purpose.upper()} WORKSPACE: the token opens from its trial PIN source (never a live one)"
