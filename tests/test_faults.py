"""Crash points: nothing unless CEREMONY_CRASH_AT names them; named, the process dies by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony.faults import crash_point

REPO = Path(__file__).resolve().parents[1]
SCRIPT = (
    "from ceremony.faults import crash_point; print('before', flush=True); crash_point('crl.signed'); print('after')"
)


def _run(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CEREMONY_CRASH_AT"}
    env |= {"PYTHONPATH": str(REPO), **environment}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_crash_point_does_nothing_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEREMONY_CRASH_AT", raising=False)
    assert crash_point("crl.signed") is None  # type: ignore[func-returns-value]
    monkeypatch.setenv("CEREMONY_CRASH_AT", "crl.written")
    assert crash_point("crl.signed") is None  # type: ignore[func-returns-value]  # another point is named: this one passes


def test_unset_the_process_runs_on() -> None:
    done = _run({})
    assert (done.returncode, done.stdout) == (0, "before\nafter\n")


def test_another_point_named_the_process_runs_on() -> None:
    done = _run({"CEREMONY_CRASH_AT": "crl.written"})
    assert (done.returncode, done.stdout) == (0, "before\nafter\n")


def test_named_the_process_dies_by_sigkill_at_that_point() -> None:
    done = _run({"CEREMONY_CRASH_AT": "crl.signed"})
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == "before\n"


def test_every_crash_point_in_the_package_is_declared() -> None:
    import re

    from ceremony.faults import POINTS

    used = {m for path in (REPO / "ceremony").rglob("*.py")
            for m in re.findall(r'crash_point\("([^"]+)"\)', path.read_text(encoding="utf-8"))}  # fmt: skip
    assert used == set(POINTS)
