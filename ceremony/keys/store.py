"""Key stores behind one narrow interface: a PKCS#11 token, or an encrypted software store.

Every key store hands out CA keys as objects that *are* cryptography private keys
(``EllipticCurvePrivateKey`` / ``RSAPrivateKey`` subclasses), so the certificate and CRL
builders sign with them directly and the private key never leaves the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ceremony.errors import TokenError
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
    #: CKA_MODIFIABLE (None: the store has no such notion).
    modifiable: bool | None = None
    #: CKA_ID in hex (None: the store has no object ids).
    key_id: str | None = None

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

    def readback(self) -> dict[str, bool | str | None]:
        """What a transcript records after changing a key's protection: ``record()``, MODIFIABLE, and the
        object's LABEL and ID (which the checks compare with the inventory and the token)."""
        return {**self.record(), "MODIFIABLE": self.modifiable, "LABEL": self.label, "ID": self.key_id}


# PKCS#11 AES key-wrap mechanisms a CA-key backup may use.
CKM_AES_KEY_WRAP = 0x2109
#: SoftHSM2's vendor number for RFC 5649 AES key wrap with padding (softhsm/SoftHSMv2#726).
CKM_AES_KEY_WRAP_PAD = 0x210A
#: PKCS#11 3.0's number for RFC 5649 AES key wrap with padding (KWP).
CKM_AES_KEY_WRAP_KWP = 0x210B
WRAP_MECHANISM_NAMES: dict[int, str] = {
    CKM_AES_KEY_WRAP: "CKM_AES_KEY_WRAP (RFC 3394)",
    CKM_AES_KEY_WRAP_PAD: "CKM_AES_KEY_WRAP_PAD (SoftHSM2's RFC 5649)",
    CKM_AES_KEY_WRAP_KWP: "CKM_AES_KEY_WRAP_KWP (PKCS#11 3.0, RFC 5649)",
}
#: What each mechanism does to the key encoding before it is wrapped, as the backup metadata records it.
WRAP_PADDING: dict[int, str] = {
    CKM_AES_KEY_WRAP: (
        "SoftHSM2 zero-pads the PKCS#8 encoding to a multiple of 8 octets before RFC 3394 wrapping (which has no "
        "length indicator); the unwrapped octets are the DER PrivateKeyInfo followed by fewer than 8 zero octets"
    ),
    CKM_AES_KEY_WRAP_PAD: (
        "SoftHSM2 zero-pads the PKCS#8 encoding to a multiple of 8 octets before RFC 5649 wrapping, so the RFC 5649 "
        "length indicator counts the padding; the unwrapped octets are the DER PrivateKeyInfo followed by fewer than "
        "8 zero octets, to be trimmed by the DER length"
    ),
    CKM_AES_KEY_WRAP_KWP: "RFC 5649 padding only: the length indicator is the PKCS#8 encoding's exact length",
}


#: The multiple of octets the key encoding is zero-padded to before wrapping (1: not padded beyond RFC 5649's own).
WRAP_PADDED_TO: dict[int, int] = {CKM_AES_KEY_WRAP: 8, CKM_AES_KEY_WRAP_PAD: 8, CKM_AES_KEY_WRAP_KWP: 1}


def wrap_mechanism_name(mechanism: int) -> str:
    """The mechanism's PKCS#11 name, or its number in hex when it is none of the AES key wraps."""
    return WRAP_MECHANISM_NAMES.get(mechanism, f"0x{mechanism:04X}")


def choose_wrap_mechanism(offered: frozenset[int], requested: int | None, *, token: str) -> int:
    """The wrap mechanism for a CA-key backup on a token that offers ``offered``: ``requested`` (a ceremony file's
    choice) if the token has it, else KWP (0x210B) where offered, SoftHSM's 0x210A otherwise.

    Raises:
        TokenError: The token lacks the requested mechanism, or offers neither RFC 5649 mechanism.
    """
    if requested is not None:
        if requested not in offered:
            raise TokenError(f"token {token!r} does not offer wrap mechanism {wrap_mechanism_name(requested)}")
        return requested
    for mechanism in (CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD):
        if mechanism in offered:
            return mechanism
    raise TokenError(f"token {token!r} offers no RFC 5649 key wrap (neither 0x210B nor 0x210A)")


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

    def unwrap(
        self,
        label: str,
        wrapped: bytes,
        kek: bytes,
        mechanism: int,
        public_key: CAPublicKey,
        *,
        extractable: bool = False,
    ) -> CAPrivateKey:
        """Import a wrapped private key under ``label``; it must match ``public_key``. ``extractable`` only for a
        scratch copy that is wrapped again and then destroyed (a backup re-wrap)."""
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


@runtime_checkable
class ExportControl(Protocol):
    """What the backup and restore ceremonies need of a store beyond ``KeyStore``: the wrap mechanisms it offers,
    and clearing EXTRACTABLE once a backup is restore-tested. Both stores keep it; a store used only for daily
    signing (an activation agent) need not."""

    def forbid_export(self, label: str) -> KeyAttributes:
        """Clear EXTRACTABLE on the private key ``label`` (its backup is restore-tested) and read the attributes
        back; a store that cannot make a key unextractable withdraws what it can and says so in them."""
        ...

    def wrap_mechanisms(self) -> frozenset[int] | None:
        """The AES key-wrap mechanisms the store offers (None: the store does not wrap with PKCS#11 mechanisms)."""
        ...


def export_control(store: object) -> ExportControl:
    """``store`` as an ``ExportControl``.

    Raises:
        TokenError: The store cannot list wrap mechanisms or clear EXTRACTABLE.
    """
    if not isinstance(store, ExportControl):
        raise TokenError(f"key store {type(store).__name__} cannot take part in a key backup or restore ceremony")
    return store


#: What a refused login says (``pkcs11._REASONS``): a PIN the token would not take.
_PIN_REFUSALS = ("PIN incorrect", "PIN length out of range", "PIN locked", "PIN expired", "PIN has invalid characters")


@contextmanager
def pin_source_named(env: str, overridden: Sequence[str]) -> Iterator[None]:
    """A token's refused PIN, when it came from the environment variable ``env``, is reported as that
    variable's (never its value), naming what it took precedence over (``overridden``: e.g. the shares
    deposited for unattended runs, or a PIN file), so that the operator unsets it instead of doubting them."""
    try:
        yield
    except TokenError as exc:
        if not os.environ.get(env) or not any(reason in exc.message for reason in _PIN_REFUSALS):
            raise
        over = f", which overrode {' and '.join(overridden)}" if overridden else ""
        raise TokenError(f"{exc.message} (the PIN came from {env}{over}; unset {env} or correct it)") from exc
