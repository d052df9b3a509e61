"""The lifetime simulation runs beside the rest of the suite, not after it.

A simulated year is a long, single-threaded run (one process, one SoftHSM2 token), while most of the suite
waits on kernels, browsers and subprocesses on one core: so the runs the tests marked ``lifetime`` name are
started as soon as collection finishes, each as ``python -m bench.lifetime`` in a process of its own, and
their tests are moved to the end of the session, where they wait for them and check what they printed. A run
no selected test names is never started; a run still going when the session ends is stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from ceremony.keys.pkcs11 import find_softhsm_module

REPO = Path(__file__).resolve().parents[2]
#: Simulated years the suite runs: six, which hold every ceremony of a PKI's life (the rollover is in the fifth)
#: and finish within the rest of the suite's time on 2 cores (seven ran beside a 16-minute suite in 15 minutes;
#: the suite has grown since; ten years take 26, over the 20-minute budget).
#: ``LIFETIME_YEARS=10 make test`` or ``make lifetime`` runs all ten; ``LIFETIME_YEARS=1`` a quicker local run.
YEARS = int(os.environ.get("LIFETIME_YEARS", "6"))
#: The runs the tests can name: name -> the bench command's arguments.
RUNS = {
    "years": ["--years", str(YEARS), "--json"],
    "broken": ["--years", "1", "--break", "skip-crl"],
}
#: The longest a run may take (a simulated year takes one to three minutes on a shared 2-core machine).
TIMEOUT = 600 + 360 * YEARS


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]

    def result(self) -> subprocess.CompletedProcess[str]:
        try:
            self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        out, err = (self._read(f) for f in (self.stdout, self.stderr))
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)

    @staticmethod
    def _read(f: IO[bytes]) -> str:
        f.seek(0)
        return f.read().decode("utf-8", "replace")


_started: dict[str, Run] = {}


def _start(name: str) -> Run:
    if name not in _started:
        out, err = (tempfile.TemporaryFile(prefix=f"lifetime-{name}-") for _ in range(2))
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.lifetime", *RUNS[name]], cwd=REPO, stdout=out, stderr=err
        )
        _started[name] = Run(process, out, err)
    return _started[name]


def _named(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("lifetime")
    return str(marker.args[0]) if marker is not None else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _named(item) is not None)  # stable: everything else keeps its order


def pytest_collection_finish(session: pytest.Session) -> None:
    if find_softhsm_module() is None:
        return  # the tests skip (or, in CI, fail) for want of SoftHSM2
    for item in session.items:
        name = _named(item)
        if name is not None:
            _start(name)


def pytest_sessionfinish() -> None:
    for run in _started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.fixture
def lifetime_run() -> Iterator[Callable[[str], subprocess.CompletedProcess[str]]]:
    """The named run's outcome (started now if collection did not start it), waited for."""
    yield lambda name: _start(name).result()
