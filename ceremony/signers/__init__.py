"""Key stores behind one narrow interface: a PKCS#11 token, or an encrypted software store.

Every key store hands out CA keys as objects that *are* cryptography private keys
(``EllipticCurvePrivateKey`` / ``RSAPrivateKey`` subclasses), so the certificate and CRL
builders sign with them directly and the private key never leaves the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.hazmat.primitives.asymmetric import ec, rsa

KeyAlgorithm = Literal["ec-p256", "ec-p384", "rsa-3072"]
CAPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
CAPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class KeyAttributes:
    """Protection attributes of a stored private key, read back from the store."""

    label: str
    sensitive: bool
    extractable: bool
    local: bool
    always_sensitive: bool
    never_extractable: bool


class KeyStore(Protocol):
    """What the workbench needs from a key store. Implementations: pkcs11, software."""

    kind: Literal["pkcs11", "software"]

    def generate(self, label: str, algorithm: KeyAlgorithm) -> CAPrivateKey:
        """Generate a new key pair under ``label`` (refuses an existing label)."""
        ...

    def load(self, label: str) -> CAPrivateKey:
        """The private key stored under ``label`` as a signing object."""
        ...

    def attributes(self, label: str) -> KeyAttributes:
        """The key's protection attributes, read back from the store."""
        ...

    def labels(self) -> list[str]:
        """Labels of the private keys in the store."""
        ...

    def close(self) -> None:
        """Log out and release the session."""
        ...
