"""Symmetric keys for symmetric-key S1SPs: key check values, XOR components, RFC 5649 wrapping.

Split knowledge (DOMAIN.md 4.5): a key that must exist as components is generated in host
memory from the OS CSPRNG and split into 2 or 3 full-length components combined by XOR; any
component alone says nothing about the key. Each component and the key carry a key check value
(KCV), so a component can be checked on entry without revealing it:

- ``kcv``: the first 3 octets of AES-ECB(K, 0^16), the long-standing convention;
- ``cmac_kcv``: the first 3 octets of AES-CMAC(K, 0^16), the newer practice (DOMAIN.md marks the
  exact input as a convention to confirm per HSM vendor).

Components are shown only to their custodians (component cards, mode 0600, as share cards in
custody.py); everything else carries KCVs only. The clear key lives in a ``bytearray`` that is
overwritten once the key is on the token; Python may still hold copies it made, so the
guarantee is "never written anywhere", not "never in memory twice".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from ceremony.errors import CeremonyError, InputError
from ceremony.fs import write_private

KcvMethod = Literal["ecb", "cmac"]
AES_LENGTHS = (16, 24, 32)


class ComponentError(CeremonyError):
    """A component or a combination that does not match its key check value; nothing was imported."""


def kcv(key: bytes | bytearray, method: KcvMethod = "ecb") -> str:
    """Key check value: 3 octets, upper-case hex, of AES-ECB(K, 0^16) or AES-CMAC(K, 0^16)."""
    if len(key) not in AES_LENGTHS:
        raise InputError(f"an AES key is 16, 24 or 32 octets (got {len(key)})")
    if method == "cmac":
        mac = cmac.CMAC(algorithms.AES(bytes(key)))
        mac.update(bytes(16))
        return mac.finalize()[:3].hex().upper()
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()  # noqa: S305 - a check value
    return (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex().upper()


@dataclass(frozen=True)
class Component:
    """One custodian's full-length XOR component. ``value`` is secret: it goes only onto the card."""

    custodian: str
    index: int
    value: bytes
    method: KcvMethod = "ecb"

    @property
    def kcv(self) -> str:
        return kcv(self.value, self.method)

    def __repr__(self) -> str:  # never shows the value
        return f"Component(custodian={self.custodian!r}, index={self.index}, kcv={self.kcv!r})"


def new_key(length: int) -> bytearray:
    """A fresh AES key from the OS CSPRNG, in a bytearray so that it can be wiped."""
    if length not in AES_LENGTHS:
        raise InputError(f"an AES key is 16, 24 or 32 octets (got {length})")
    return bytearray(secrets.token_bytes(length))


def wipe(buffer: bytearray) -> None:
    """Overwrite a key held in a bytearray (best effort: Python may have made copies)."""
    for i in range(len(buffer)):
        buffer[i] = 0


def split(key: bytes | bytearray, custodians: list[str], method: KcvMethod = "ecb") -> list[Component]:
    """2 or 3 full-length components, C1..Cn-1 random and Cn = K xor C1 xor ... xor Cn-1."""
    if len(custodians) not in (2, 3):
        raise InputError(f"a key is split into 2 or 3 components (got {len(custodians)} custodians)")
    if len(set(custodians)) != len(custodians):
        raise InputError("one person would hold two components of one key")
    randoms = [secrets.token_bytes(len(key)) for _ in custodians[1:]]
    last = bytearray(key)
    for r in randoms:
        last = bytearray(a ^ b for a, b in zip(last, r, strict=True))
    values = [*randoms, bytes(last)]
    wipe(last)
    return [Component(c, i + 1, v, method) for i, (c, v) in enumerate(zip(custodians, values, strict=True))]


def combine(
    entered: list[tuple[str, bytes]], expected: dict[str, str], key_kcv: str, method: KcvMethod = "ecb"
) -> bytearray:
    """XOR the entered components after checking each against its recorded KCV, and the result
    against the key's; raises ``ComponentError`` naming the check that failed (never a value)."""
    if len(entered) < 2:
        raise ComponentError(f"{len(entered)} component(s) entered; all of the key's components are needed")
    lengths = {len(value) for _, value in entered}
    if len(lengths) != 1:
        raise ComponentError("the components differ in length")
    holders = [c for c, _ in entered]
    if len(set(holders)) != len(holders):
        raise ComponentError("one custodian entered two components")
    missing = sorted(set(expected) - set(holders))
    if missing:
        raise ComponentError(f"no component from {', '.join(missing)}")
    for custodian, value in entered:
        if custodian not in expected:
            raise ComponentError(f"{custodian} holds no component of this key")
        if kcv(value, method) != expected[custodian]:
            raise ComponentError(f"{custodian}'s component does not match its KCV {expected[custodian]}")
    key = bytearray(lengths.pop())
    for _, value in entered:
        for i, octet in enumerate(value):
            key[i] ^= octet
    if kcv(key, method) != key_kcv:
        wipe(key)
        raise ComponentError(f"the combined key does not match its KCV {key_kcv}; nothing imported")
    return key


def parse_component(text: str) -> bytes:
    """A component as typed or read from a card: hex, spaces and dashes ignored."""
    cleaned = "".join(ch for ch in text if ch not in " -\n\t")
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise ComponentError("a component is hexadecimal (0-9, A-F)") from None
    if len(value) not in AES_LENGTHS:
        raise ComponentError(f"a component is 16, 24 or 32 octets (got {len(value)})")
    return value


def write_component_card(
    directory: Path, *, ceremony_id: str, key_label: str, component: Component, of: int, bag: str | None
) -> Path:
    """A component card for one custodian: mode 0600, to be printed, sealed in its bag, then deleted."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{ceremony_id}.{key_label}.component-{component.index}.{component.custodian}.txt"
    groups = " ".join(component.value.hex().upper()[i : i + 4] for i in range(0, len(component.value) * 2, 4))
    text = (
        f"KEY COMPONENT - {key_label} - ceremony {ceremony_id}\n"
        f"custodian: {component.custodian}   component {component.index} of {of}\n"
        f"tamper-evident bag: {bag or '(none recorded)'}\n"
        f"component KCV ({component.method}): {component.kcv}\n\n{groups}\n\n"
        "Print this card, seal it in the bag named above, then delete this file.\n"
    )
    return write_private(path, text)


def read_component_card(path: Path) -> bytes:
    """The component on a card written by ``write_component_card``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    hex_line = next(line for line in lines if line and all(ch in "0123456789ABCDEF " for ch in line))
    return parse_component(hex_line)


def wrap(kek: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """RFC 5649 AES key wrap with padding of ``key`` under ``kek`` (software)."""
    return aes_key_wrap_with_padding(bytes(kek), bytes(key))


def unwrap(kek: bytes | bytearray, wrapped: bytes, expected_kcv: str | None = None) -> bytearray:
    """Unwrap (RFC 5649) and, when given, check the key against its KCV before anyone uses it."""
    try:
        key = bytearray(aes_key_unwrap_with_padding(bytes(kek), wrapped))
    except InvalidUnwrap:
        raise ComponentError("the wrapped key does not unwrap under this KEK (wrong KEK or damaged)") from None
    if expected_kcv is not None and kcv(key) != expected_kcv:
        wipe(key)
        raise ComponentError(f"the unwrapped key does not match its KCV {expected_kcv}")
    return key
