"""What notebook 30 shows after a batch: its summary, and a spot check of the bundle's first and last certificate
(the profile checks, and ``openssl verify -x509_strict`` up to the root at the workspace's time)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.errors import InputError, StateError
from ceremony.issue.batch import BatchResult
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import Finding, failing
from ceremony.model.der import serial_hex
from ceremony.model.profiles import get_profile
from ceremony.record.workspace import Workspace

_BEGIN, _END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
#: Bytes read at each end of a bundle: several PEM certificates (a device certificate is under 1 KiB).
WINDOW = 16 * 1024
OPENSSL_TIMEOUT = 60.0


def batch_summary(result: BatchResult) -> pd.DataFrame:
    """The batch in one two-column table: what was asked, issued, resumed and rejected, and the bundle."""
    rows = {
        "batch": result.batch_id,
        "requested": result.requested,
        "issued now": result.issued_now,
        "issued before (resumed)": result.issued_before,
        "rejected": len(result.rejected),
        "first serial": result.first_serial,
        "last serial": result.last_serial,
        "SHA-256 of the serial list": result.serials_sha256,
        "bundle": result.bundle,
        "bundle SHA-256": result.bundle_sha256,
    }
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows))


@dataclass(frozen=True)
class SpotCheck:
    """One certificate of the bundle, checked again as it reached the disk."""

    #: Where it stands in the bundle: "first", "last", or "only" (a bundle of one certificate).
    position: str
    serial: str
    #: The profile checks' ERROR and FATAL findings (none: clean).
    problems: tuple[Finding, ...]
    #: ``openssl verify``'s verdict: "OK", or its first complaint; None where openssl is not installed.
    openssl: str | None

    @property
    def lint(self) -> str:
        return "clean" if not self.problems else str(self.problems[0])

    @property
    def ok(self) -> bool:
        return not self.problems and self.openssl in (None, "OK")


def bundle_ends(bundle: Path) -> list[tuple[str, x509.Certificate]]:
    """The first and last certificate of a PEM bundle, read from its two ends (never the whole bundle)."""
    try:
        fd = os.open(bundle, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise StateError(f"{bundle}: cannot read the batch bundle ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{bundle}: the batch bundle must be a regular file")
        head = fh.read(WINDOW)
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - WINDOW))
        tail = fh.read(WINDOW)
    start, end, last = head.find(_BEGIN), head.find(_END), tail.rfind(_BEGIN)
    if start < 0 or end < start or last < 0:
        raise StateError(f"{bundle}: the batch bundle holds no PEM certificate")
    first_cert = x509.load_pem_x509_certificate(head[start : end + len(_END)])
    last_cert = x509.load_pem_x509_certificate(tail[last:])
    if first_cert == last_cert:
        return [("only", first_cert)]
    return [("first", first_cert), ("last", last_cert)]


def ca_chain(ws: Workspace, ca: str) -> list[Path]:
    """The certificate files of ``ca`` and every CA above it, from ``ca`` up to its root, as the inventory
    records them (the artifacts written when each CA was created)."""
    files: list[Path] = []
    seen: list[str] = []
    name: str | None = ca
    while name is not None and name not in seen:
        seen.append(name)
        record = ws.inventory.ca(name)
        found = ws.inventory.certificate(record.issuer_ca or record.name, record.serial)
        if found is None or not found.artifact:
            raise StateError(f"CA {name!r} has no certificate file in the inventory")
        files.append(ws.root / found.artifact)
        name = record.issuer_ca
    return files


def openssl_verify(pem: bytes, chain: list[Path], at: datetime) -> str:
    """``openssl verify -x509_strict`` of one PEM certificate (on stdin) up to the last file of ``chain`` (the
    root, trusted; the others untrusted intermediates), at ``at``: "OK", or openssl's first complaint."""
    if not chain:
        raise InputError("openssl verify needs the CA chain (at least the root)")
    command = ["openssl", "verify", "-attime", str(int(at.timestamp())), "-x509_strict", "-CAfile", str(chain[-1])]
    for intermediate in chain[:-1]:
        command += ["-untrusted", str(intermediate)]
    try:
        proc = subprocess.run(command, input=pem, capture_output=True, timeout=OPENSSL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run openssl ({type(exc).__name__})"
    if proc.returncode == 0:
        return "OK"
    lines = [line.strip() for line in (proc.stdout + proc.stderr).decode(errors="replace").splitlines()]
    complaints = [line for line in lines if line.startswith("error")] or [line for line in lines if line]
    return complaints[0] if complaints else f"openssl verify exited {proc.returncode}"


def spot_check(ws: Workspace, result: BatchResult, ca: str, profile: str) -> list[SpotCheck]:
    """Check the bundle's first and last certificate as written: the profile's checks against the issuing CA,
    and, where openssl is installed, ``openssl verify`` up to the root at the workspace's time (a pinned clock
    is honoured). A batch that wrote no bundle has nothing to check."""
    if result.bundle is None:
        return []
    ends = bundle_ends(result.bundle)
    issuer = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(ca))
    resolved = get_profile(profile, ws.config.oids)
    chain = ca_chain(ws, ca) if shutil.which("openssl") else None
    at = ws.clock.now()
    checks = []
    for position, cert in ends:
        der = cert.public_bytes(serialization.Encoding.DER)
        problems = tuple(failing(check_certificate(der, resolved, issuer=issuer, now=at)))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        verdict = openssl_verify(pem, chain, at) if chain is not None else None
        checks.append(SpotCheck(position, serial_hex(cert.serial_number), problems, verdict))
    return checks


def spot_check_table(checks: list[SpotCheck]) -> pd.DataFrame:
    """One row per spot-checked certificate: where it stands, its serial, the lint and openssl verdicts."""
    rows = [
        {"certificate": c.position, "serial": c.serial, "lint": c.lint, "openssl": c.openssl or "not installed"}
        for c in checks
    ]
    return pd.DataFrame(rows, columns=["certificate", "serial", "lint", "openssl"])
