"""Activation for daily work: m custodians present their PIN shares and the token opens for a bounded session.

``activate`` checks each presented share against the fingerprint its token-initialisation ceremony recorded,
rebuilds the PIN, and starts the session process (:mod:`ceremony.keys.agent`), handing it the PIN through a
pipe. The session process logs in, journals ``token.activated`` (who, until when, for how many signatures),
serves the workspace's commands and notebooks, and journals ``token.activation_ended`` when it expires, its
operations are used up, or an officer ends it (``ceremony activate --end``). The PIN is never written
anywhere. A session process that was killed cannot journal its end: the next activation, status or end
finds it gone and journals that.

Run as ``python -m ceremony.procedures.activation ROOT`` it is the session process (started by ``activate``).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ceremony.errors import CeremonyError, ConfigError, InputError, StateError, TokenError
from ceremony.keys import agent
from ceremony.keys.custody import CustodyError, combine, pin_from_secret, share_fingerprint
from ceremony.model.events import Action, Event, TokenActivated, TokenActivationEnded
from ceremony.model.policy import PolicyParameters, load_policy
from ceremony.procedures.consoles import Console
from ceremony.record.transcript import read_entries, verify_transcript
from ceremony.record.workspace import Workspace, activation_purpose

#: How long ``activate`` waits for the session process to log in and listen.
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class PinSplit:
    """What the token's initialisation ceremony recorded of its user-PIN split (nothing secret)."""

    ceremony_id: str
    m: int
    shares: dict[str, str]  # custodian -> share fingerprint


def pin_split(ws: Workspace, token_label: str) -> PinSplit:
    """The user-PIN split of ``token_label`` from its sealed, intact token-initialisation transcript."""
    purpose = activation_purpose(token_label)
    for path in sorted(ws.transcripts_dir.glob("*.jsonl")):
        if path.name.endswith(".attestations.jsonl"):
            continue
        entries = read_entries(path)
        for entry in entries:
            split = (entry.get("details") or {}).get(purpose) if entry.get("event") == Event.STEP else None
            if entry.get("step") == Action.TOKEN_INITIALISE and isinstance(split, dict):
                if not verify_transcript(path).ok:
                    raise StateError(f"the token-initialisation transcript {path.name} does not verify; no activation")
                return PinSplit(str(entries[0].get("ceremony_id")), int(split["m"]), dict(split["shares"]))
    raise StateError(
        f"no token-initialisation ceremony of token {token_label!r} is on record in {ws.transcripts_dir}; "
        "a token is activated with the shares its initialisation handed out"
    )


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
                f"{custodian}'s share is not the one the token's initialisation ({split.ceremony_id}) recorded for them"
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


def _refuse_unsuitable(ws: Workspace) -> str:
    ks = ws.config.key_store
    if ks.kind != "pkcs11" or not ks.token_label:
        raise ConfigError(
            f"{ws.root}: a software key store is opened with its passphrase (trial workspaces); "
            "activation is for a PKCS#11 token"
        )
    return ks.token_label


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
    label = _refuse_unsuitable(ws)
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
        [sys.executable, "-m", "ceremony.procedures.activation", str(ws.root)],
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
    ended = agent.end(agent.socket_path(ws.root))
    if ended:
        for _ in range(50):  # the session journals its end as it leaves
            if not _open_sessions(ws):
                break
            time.sleep(0.1)
    else:
        _journal_lost_sessions(ws)
    return ended


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


# --- the session process ------------------------------------------------------------------------------
def _serve(root: Path) -> int:
    """The session process: read the header from stdin, log in, journal, listen until the session ends."""
    out = sys.stdout
    try:
        header = json.loads(sys.stdin.readline(65536))
        sys.stdin.close()
        ws = Workspace.open(root)
        label = _refuse_unsuitable(ws)
        store = ws.token_store(label, str(header.pop("pin")))
        now = ws.clock.now()
        minutes, operations = int(header["minutes"]), int(header["operations"])
        expires = (now + timedelta(minutes=minutes)).isoformat(timespec="seconds")
        session = agent.Session(
            store, session=str(header["session"]), token_label=label, expires=expires,
            deadline=time.monotonic() + minutes * 60, operations=operations, monotonic=time.monotonic,
        )  # fmt: skip
        signal.signal(signal.SIGTERM, lambda *_: session.end("terminated"))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

        def ready() -> None:
            ws.journal.append(
                TokenActivated(
                    session=session.session,
                    token_label=label,
                    custodians=list(header["custodians"]),
                    shares_presented=dict(header["shares"]),
                    quorum_m=int(header["m"]),
                    expires=expires,
                    max_operations=operations,
                    pid=os.getpid(),
                )  # fmt: skip
            )
            out.write("ready\n")
            out.flush()
            out.close()

        reason = agent.serve(session, agent.socket_path(ws.root), ready)
    except CeremonyError as exc:
        return _report(out, exc.message)
    except (ValueError, KeyError, TypeError):
        return _report(out, "the activation request was malformed")
    store.close()
    ws.journal.append(
        TokenActivationEnded(session=session.session, token_label=label, reason=reason, operations=session.used)
    )
    ws.close()
    return 0


def _report(out: Any, message: str) -> int:
    if not out.closed:  # before "ready": the starting command prints it
        out.write(f"error {message}\n")
        out.flush()
    return 2


if __name__ == "__main__":  # pragma: no cover - run by ``activate`` as its own process
    sys.exit(_serve(Path(sys.argv[1])))
