"""Journal entries for tests that need some: real records of ceremony.model.events, never a made-up event."""

from __future__ import annotations

from ceremony.model.events import Deviation


def note(n: int | str) -> Deviation:
    """A deviation numbered ``n``: an event any log may hold."""
    return Deviation(what=f"note {n}", why="a test writes it", acknowledged_by=["tester"])
