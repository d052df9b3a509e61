"""The one source of "now": the system clock, or a pinned clock for tests, demos and rehearsals.

Nothing in the package reads the time except through a :class:`Clock`. A workspace carries its clock
(:attr:`ceremony.record.workspace.Workspace.clock`); code without a workspace asks :func:`current`.

A pinned clock reads ``at`` at the real instant ``anchor`` and moves on with real time from there, so
every process that shares the pin (a notebook kernel, a pool worker, the token's helper process) agrees
on the time and the time never runs backwards between them. It crosses into child processes through one
variable, :data:`PIN_VARIABLE` (``<ISO-8601 instant>@<anchor, Unix seconds>``), which only test, demo and
rehearsal workspaces honour: a live workspace refuses to open while it is set (a clock an insider can set
is a backdating tool), and it is never a notebook parameter.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from ceremony.errors import ConfigError

#: The one variable a pinned time travels in: ``2026-12-01T10:00:00+00:00@1796119200.0``.
PIN_VARIABLE = "CEREMONY_PINNED_CLOCK"


class Clock(Protocol):
    """Tells the time (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PinnedClock:
    """Reads ``at`` at the real instant ``anchor`` (Unix seconds) and moves on with real time."""

    at: datetime
    anchor: float

    def now(self) -> datetime:
        return self.at + timedelta(seconds=time.time() - self.anchor)

    def to_environment(self) -> str:
        """The value of :data:`PIN_VARIABLE` that gives a child process this same clock."""
        return f"{self.at.isoformat()}@{self.anchor!r}"

    @classmethod
    def parse(cls, text: str) -> PinnedClock:
        at, sep, anchor = text.rpartition("@")
        try:
            when = datetime.fromisoformat(at)
            since = float(anchor)
            datetime.fromtimestamp(since, timezone.utc)  # an instant a clock can read (not NaN, inf, 1e300)
        except (ValueError, OverflowError, OSError):
            when, since = None, 0.0
        if not sep or when is None or when.tzinfo is None:
            raise ConfigError(f"{PIN_VARIABLE} must be <ISO-8601 instant with offset>@<Unix seconds>, got {text!r}")
        return cls(when.astimezone(timezone.utc), since)


SYSTEM = SystemClock()


def pin(at: datetime) -> PinnedClock:
    """A clock that reads ``at`` now and moves on with real time."""
    if at.tzinfo is None:
        raise ValueError("a pinned time needs a timezone")
    return PinnedClock(at.astimezone(timezone.utc), time.time())


def pinned(environ: Mapping[str, str] | None = None) -> PinnedClock | None:
    """The clock :data:`PIN_VARIABLE` pins, or None when it is unset."""
    text = (os.environ if environ is None else environ).get(PIN_VARIABLE)
    return PinnedClock.parse(text) if text else None


def current(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock of a command that has no workspace: the pinned one when set, else the system clock."""
    return pinned(environ) or SYSTEM
