"""Software key store: encrypted PKCS#8 files, for trying the workbench without a token.

Labelled as such everywhere: the key material exists on disk (encrypted) and in process
memory, so none of the token guarantees hold. Evidence packs report a CA that used it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import TokenError
from ceremony.signers import CAPrivateKey, KeyAlgorithm, KeyAttributes

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SoftwareKeyStore:
    """Keys as ``<directory>/<label>.key.pem`` (PKCS#8, encrypted with the store passphrase, mode 0600)."""

    kind = "software"

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if len(passphrase) < 16:
            raise TokenError("the software store passphrase must be at least 16 characters")
        self.directory = directory
        self._passphrase = passphrase

    def __repr__(self) -> str:  # never shows the passphrase
        return f"SoftwareKeyStore({str(self.directory)!r})"

    def _path(self, label: str) -> Path:
        if not _LABEL.match(label):
            raise TokenError(f"key label must be letters, digits, . _ - (got {label!r})")
        return self.directory / f"{label}.key.pem"

    def labels(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name.removesuffix(".key.pem") for p in self.directory.glob("*.key.pem"))

    def generate(self, label: str, algorithm: KeyAlgorithm, *, extractable: bool = False) -> CAPrivateKey:
        path = self._path(label)
        key: CAPrivateKey
        if algorithm == "ec-p256":
            key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "ec-p384":
            key = ec.generate_private_key(ec.SECP384R1())
        elif algorithm == "rsa-3072":
            key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        else:
            raise TokenError(f"key algorithm must be one of ec-p256, ec-p384, rsa-3072 (got {algorithm!r})")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError as exc:
            raise TokenError(f"the software store already holds a key labelled {label!r}") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        return key

    def load(self, label: str) -> CAPrivateKey:
        path = self._path(label)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise TokenError(f"no key labelled {label!r} in the software store") from exc
        try:
            key = serialization.load_pem_private_key(data, self._passphrase)
        except (ValueError, TypeError) as exc:
            raise TokenError(f"cannot decrypt software key {label!r} (wrong passphrase?)") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TokenError(f"software key {label!r} is neither EC nor RSA")
        return key

    def attributes(self, label: str) -> KeyAttributes:
        self.load(label)
        return KeyAttributes(
            label=label, sensitive=False, extractable=True, local=True, always_sensitive=False, never_extractable=False
        )

    def close(self) -> None:
        """Nothing to release."""
