"""Crash points for the crash-consistency tests: with ``CEREMONY_CRASH_AT=<name>`` in its environment, a
process kills itself with SIGKILL at that point, exactly as a power cut or ``kill -9`` would. Unset (always,
in use), a crash point costs one dictionary lookup."""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("CEREMONY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
