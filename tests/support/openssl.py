"""OpenSSL as an outside validator, at the suite's pinned time (``-attime``), never the machine's date."""

from __future__ import annotations

import subprocess

from ceremony.clock import current


def attime() -> list[str]:
    """``-attime`` with the pinned clock's current Unix time."""
    return ["-attime", str(int(current().now().timestamp()))]


def openssl_verify(*args: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify -attime NOW ARGS...`` (certificate chains, CRL checks)."""
    return subprocess.run(["openssl", "verify", *attime(), *args], capture_output=True, text=True)
