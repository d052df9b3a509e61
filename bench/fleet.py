"""Device CSRs for the benchmark: a device list (``eui64,usage,csr``) and one DER CSR per certificate."""

from __future__ import annotations

import os
from multiprocessing import get_context
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

BASE = 0x00DB_BE00_0000_0000


def _write(job: tuple[str, int, int]) -> list[str]:
    directory, start, stop = job
    rows = []
    for n in range(start, stop):
        eui64 = f"{BASE + n + 1:016X}"
        for usage in ("ds", "ka"):
            key = ec.generate_private_key(ec.SECP256R1())
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
            name = f"csr/{eui64}-{usage}.der"
            Path(directory, name).write_bytes(csr.public_bytes(serialization.Encoding.DER))
            rows.append(f"{eui64},{usage},{name}")
    return rows


def make_device_csrs(directory: Path, certificates: int) -> Path:
    """``certificates`` CSRs (a DS and a KA per device, fresh P-256 keys, empty subjects); returns the list."""
    (directory / "csr").mkdir(parents=True, exist_ok=True)
    devices = (certificates + 1) // 2
    step = 2000
    jobs = [(str(directory), start, min(start + step, devices)) for start in range(0, devices, step)]
    with get_context("fork").Pool(os.cpu_count() or 1) as pool:
        rows = [row for part in pool.map(_write, jobs) for row in part][:certificates]
    path = directory / "devices.csv"
    path.write_text("eui64,usage,csr\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path
