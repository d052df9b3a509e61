"""Key stores behind one narrow interface: a PKCS#11 token, or an encrypted software store.

Every key store hands out CA keys as objects that *are* cryptography private keys
(``EllipticCurvePrivateKey`` / ``RSAPrivateKey`` subclasses), so the certificate and CRL
builders sign with them directly and the private key never leaves the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from ceremony.model.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm


@dataclass(frozen=True)
class KeyAttributes:
    """Protection attributes of a stored private key, read back from the store."""

    label: str
    sensitive: bool
    extractable: bool
    local: bool
    always_sensitive: bool
    never_extractable: bool
    wrap_with_trusted: bool = False

    def record(self) -> dict[str, bool]:
        """The attributes as a transcript records them (PKCS#11 names)."""
        return {
            "SENSITIVE": self.sensitive,
            "EXTRACTABLE": self.extractable,
            "LOCAL": self.local,
            "ALWAYS_SENSITIVE": self.always_sensitive,
            "NEVER_EXTRACTABLE": self.never_extractable,
            "WRAP_WITH_TRUSTED": self.wrap_with_trusted,
        }


class KeyStore(Protocol):
    """What the workbench needs from a key store. Implementations: pkcs11, software."""

    kind: Literal["pkcs11", "software"]

    def generate(self, label: str, algorithm: KeyAlgorithm, *, extractable: bool = False) -> CAPrivateKey:
        """Generate a new key pair under ``label`` (refuses an existing label); ``extractable``
        allows a wrapped backup."""
        ...

    def wrap(self, label: str, kek: bytes, mechanism: int) -> bytes:
        """The private key ``label`` exported under the 256-bit key-encryption key ``kek``."""
        ...

    def unwrap(self, label: str, wrapped: bytes, kek: bytes, mechanism: int, public_key: CAPublicKey) -> CAPrivateKey:
        """Import a wrapped private key under ``label``; it must match ``public_key``."""
        ...

    def destroy(self, label: str) -> None:
        """Destroy the key pair stored under ``label``."""
        ...

    def import_secret(self, label: str, value: bytes | bytearray, *, purpose: str, extractable: bool = False) -> str:
        """Store an AES key (``purpose`` kek or data); returns its KCV as the store computes it."""
        ...

    def generate_secret(self, label: str, length: int, *, purpose: str, extractable: bool = False) -> str:
        """Generate an AES key inside the store; returns its KCV."""
        ...

    def secret_kcv(self, label: str) -> str:
        """The KCV (AES-ECB of a zero block, 3 octets) of a stored AES key."""
        ...

    def secret_attributes(self, label: str) -> KeyAttributes:
        """The protection attributes of a stored AES key."""
        ...

    def wrap_secret(self, kek_label: str, label: str, mechanism: int) -> bytes:
        """An AES key declared for wrapped export, wrapped (RFC 5649) under a stored KEK."""
        ...

    def unwrap_secret(
        self, kek_label: str, label: str, wrapped: bytes, mechanism: int, *, purpose: str, extractable: bool = False
    ) -> str:
        """Unwrap an AES key under a stored KEK into the store; returns its KCV."""
        ...

    def destroy_secret(self, label: str) -> None:
        """Destroy a stored AES key."""
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
