"""What operators run today, timed as whole processes: ``openssl ca -infiles`` and ``openssl ca -gencrl``.

The CA is a throwaway P-256 key and certificate in a temporary directory. ``openssl ca`` issues with
extensions shaped like the device profile (keyUsage critical, SKI, AKI keyid, certificatePolicies
critical, notAfter 99991231235959Z) and accepts the CSRs' empty subjects. CSRs are converted to PEM
before the clock starts (``openssl ca`` reads PEM requests).
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_CONFIG = """[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
default_enddate = 99991231235959Z
x509_extensions = device_ext
email_in_dn = no
default_crl_days = 7
[ policy_any ]
commonName = optional
[ device_ext ]
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = critical, 1.3.6.1.4.1.32473.1
"""


@dataclass(frozen=True)
class OpenSSLCA:
    directory: Path
    config: Path


def openssl_version() -> str:
    return subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True).stdout.strip()


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def setup_openssl_ca(directory: Path) -> OpenSSLCA:
    (directory / "newcerts").mkdir(parents=True)
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    (directory / "crlnumber").write_text("01\n")
    _run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(directory / "ca.key"))
    _run("req", "-new", "-x509", "-key", str(directory / "ca.key"), "-subj", "/CN=Bench OpenSSL CA", "-days", "3650",
         "-sha256", "-out", str(directory / "ca.pem"))  # fmt: skip
    config = directory / "ca.cnf"
    config.write_text(_CONFIG.format(dir=directory))
    return OpenSSLCA(directory, config)


def _reset_database(ca: OpenSSLCA) -> None:
    (ca.directory / "index.txt").write_text("")
    for old in (ca.directory / "newcerts").glob("*"):
        old.unlink()


def time_openssl_ca_infiles(ca: OpenSSLCA, csr_paths: list[Path], out: Path) -> float:
    """Seconds for ``openssl ca -batch -infiles`` over the CSRs (PEM conversion done before timing).

    The request paths go on the command line in as few processes as the OS argument limit allows
    (5,000 per process); the times of the processes are summed.
    """
    pem_dir = ca.directory / "requests"
    pem_dir.mkdir(exist_ok=True)
    pems = []
    for path in csr_paths:
        pem = pem_dir / (path.stem + ".pem")
        text = base64.encodebytes(path.read_bytes()).decode().replace("\n", "")
        lines = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
        pem.write_text(f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}\n-----END CERTIFICATE REQUEST-----\n")
        pems.append(str(pem))
    _reset_database(ca)
    total = 0.0
    for start in range(0, len(pems), 5000):
        started = time.perf_counter()
        _run("ca", "-batch", "-notext", "-config", str(ca.config), "-out", f"{out}.{start}", "-infiles",
             *pems[start : start + 5000])  # fmt: skip
        total += time.perf_counter() - started
    return total


def time_openssl_gencrl(ca: OpenSSLCA, revoked: int, out: Path) -> float:
    """Seconds for ``openssl ca -gencrl`` with ``revoked`` revoked entries in the database (PEM CRL)."""
    lines = (
        f"R\t99991231235959Z\t261124120000Z,keyCompromise\t{secrets.token_hex(16).upper()}\tunknown\t/CN=d\n"
        for _ in range(revoked)
    )
    (ca.directory / "index.txt").write_text("".join(lines))
    started = time.perf_counter()
    _run("ca", "-gencrl", "-config", str(ca.config), "-out", str(out))
    return time.perf_counter() - started
