"""Where a batch's time goes: seconds per stage, read off a stopwatch (durations only, never the time of day)."""

from __future__ import annotations

import time as stopwatch

#: Seconds spent per stage of one batch run, by stage name (``BatchResult.stages``).
Stages = dict[str, float]

READ_CSR = "read CSR"
CHECK_CSR = "decode/POP verify"
FILL = "fill"
SIGN = "sign"
VERIFY = "verify"
SAMPLE = "sample checks"
RECORD = "record/insert"
BUNDLE = "bundle"
#: The stages in pipeline order; what a run spends outside them is the rest of its time.
ORDER = (READ_CSR, CHECK_CSR, FILL, SIGN, VERIFY, SAMPLE, RECORD, BUNDLE)


def mark() -> float:
    """A stopwatch reading (seconds, from an arbitrary origin)."""
    return stopwatch.perf_counter()


def lap(stages: Stages | None, name: str, since: float) -> float:
    """Add the time since ``since`` to stage ``name`` (when ``stages`` is given); returns the new reading."""
    now = stopwatch.perf_counter()
    if stages is not None:
        stages[name] = stages.get(name, 0.0) + now - since
    return now
