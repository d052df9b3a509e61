"""Crash points for the crash-consistency tests: with ``CEREMONY_CRASH_AT=<name>`` in its environment, a
process kills itself with SIGKILL at that point, exactly as a power cut or ``kill -9`` would. Unset (always,
in use), a crash point costs one dictionary lookup."""

from __future__ import annotations

import os
import signal

#: Every crash point, in the order each operation reaches them (``step:<name>``: after a ceremony's step).
POINTS: tuple[str, ...] = (
    # CRL publication (issue/crl.py): signed, file written, journal line written (not committed), committed
    "crl.signed", "crl.written", "crl.journaled", "crl.recorded",
    # single issuance (issue/single.py): signed, file written inside the recording transaction, journal line
    # written (not committed), committed
    "issue.signed", "issue.written", "issue.journaled", "issue.recorded",
    # revocation (issue/revocation.py): checked (nothing written), journal line written (not committed), committed
    "revoke.checked", "revoke.journaled", "revoke.recorded",
)  # fmt: skip


def crash_point(name: str) -> None:
    if os.environ.get("CEREMONY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
