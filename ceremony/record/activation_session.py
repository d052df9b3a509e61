"""The activation session process: it holds the token open for one activation and journals its start and end.

Started by :func:`ceremony.procedures.activation.activate` as ``python -m ceremony.record.activation_session
ROOT``, it reads the PIN and the session's terms from its standard input (never from its arguments or the
environment), logs in, journals ``token.activated``, says "ready", serves the workspace's commands and
notebooks (:mod:`ceremony.keys.agent`) and journals ``token.activation_ended`` as it leaves. It imports only
what that needs, so an activation starts in the time a login takes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from ceremony.errors import CeremonyError, ConfigError
from ceremony.keys import agent
from ceremony.model.events import TokenActivated, TokenActivationEnded
from ceremony.record.workspace import Workspace


def refuse_unsuitable(ws: Workspace) -> str:
    """The token an activation opens: a PKCS#11 workspace's (a software key store is never activated)."""
    ks = ws.config.key_store
    if ks.kind != "pkcs11" or not ks.token_label:
        raise ConfigError(
            f"{ws.root}: a software key store is opened with its passphrase (trial workspaces); "
            "activation is for a PKCS#11 token"
        )
    return ks.token_label


def _serve(root: Path) -> int:
    """The session process: read the header from stdin, log in, journal, listen until the session ends."""
    out = sys.stdout
    try:
        header = json.loads(sys.stdin.readline(65536))
        sys.stdin.close()
        ws = Workspace.open(root)
        label = refuse_unsuitable(ws)
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
