"""Pre-encoded TBS templates: the profile's certificate with only its fixed-length variable fields left to fill.

For a device profile every field that varies between two certificates of one batch has a fixed
length: the serial (16 octets, first octet 0x01-0x7F so DER keeps all 16), notBefore (UTCTime),
the P-256 point (65 octets), the SKI (8 octets, GBCS method 2) and the EUI-64 (8 octets). So the
TBS the cryptography builder produces for one placeholder identity can be cut at those offsets
and refilled for each certificate without re-encoding anything. ``TbsTemplate.prove`` shows,
for a real request, that the filled template and the builder give the same bytes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError
from ceremony.model.der import gbcs_key_identifier
from ceremony.model.profiles import ResolvedProfile
from ceremony.model.tbs import Identity, Issuer, Usage, build_tbs

#: SubjectPublicKeyInfo of a P-256 key up to the point: SEQUENCE, id-ecPublicKey, prime256v1, BIT STRING.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
SERIAL_OCTETS = 16


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def utc_time(when: datetime) -> bytes:
    """The content octets of an RFC 5280 UTCTime (years 1950-2049)."""
    return when.astimezone(timezone.utc).strftime("%y%m%d%H%M%SZ").encode()


def assemble(tbs: bytes, signature: bytes) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm (ecdsa-with-SHA256), signatureValue }."""
    bits = b"\x03" + der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + ECDSA_WITH_SHA256 + bits
    return b"\x30" + der_length(len(body)) + body


def _placeholder_time() -> datetime:
    # Distinctive seconds so that its encoding occurs once in the TBS.
    return datetime(2049, 7, 13, 11, 22, 33, tzinfo=timezone.utc)


def _once(haystack: bytes, needle: bytes, what: str) -> int:
    at = haystack.find(needle)
    if at < 0 or haystack.find(needle, at + 1) >= 0:
        raise StateError(f"TBS template: the {what} placeholder is not found exactly once")
    return at


@dataclass(frozen=True)
class TbsTemplate:
    """One profile, issuer and usage: the exemplar TBS and the offsets of its variable fields."""

    der: bytes
    serial_at: int
    not_before_at: int
    point_at: int
    ski_at: int
    eui64_at: int
    not_after: datetime

    @classmethod
    def build(cls, profile: ResolvedProfile, issuer: Issuer, usage: Usage) -> TbsTemplate:
        """Encode the profile once with placeholders and find them; only device-shaped profiles qualify."""
        rules = profile.rules
        if rules.subject.form != "empty" or not rules.validity.fixed_not_after:
            raise InputError(
                f"profile {profile.name} is not a device profile (empty subject, fixed notAfter); "
                "batch issuance builds device certificates"
            )
        if rules.key_algorithms != ["ec-p256"]:
            raise InputError(f"batch issuance supports P-256 device keys; profile {profile.name} allows others")
        serial = bytearray(secrets.token_bytes(SERIAL_OCTETS))
        serial[0] = 0x40 | (serial[0] & 0x3F)
        eui64 = secrets.token_bytes(8)
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        now = _placeholder_time()
        identity = Identity(eui64=eui64.hex().upper(), usage=usage)
        builder = build_tbs(identity, key.public_key(), profile, issuer, int.from_bytes(serial, "big"), now)
        cert = builder.sign(key, hashes.SHA256())
        der = cert.tbs_certificate_bytes
        return cls(
            der=der,
            serial_at=_once(der, bytes(serial), "serial"),
            not_before_at=_once(der, b"\x17\x0d" + utc_time(now), "notBefore") + 2,
            point_at=_once(der, point, "public key"),
            ski_at=_once(der, gbcs_key_identifier(point), "key identifier"),
            eui64_at=_once(der, eui64, "EUI-64"),
            not_after=cert.not_valid_after_utc,
        )

    def fill(self, serial: bytes, not_before: bytes, point: bytes, eui64: bytes) -> tuple[bytes, bytes]:
        """(TBS, SKI) for one certificate: 16 serial octets, 13 UTCTime octets, 65 point octets, 8 EUI-64 octets."""
        if len(serial) != SERIAL_OCTETS or len(not_before) != 13 or len(point) != 65 or len(eui64) != 8:
            raise ValueError("TBS template: a variable field of the wrong length")
        ski = gbcs_key_identifier(point)
        values = (serial, not_before, point, ski, eui64)
        (f0, f1, f2, f3, f4, f5), (o0, o1, o2, o3, o4) = self._pieces
        return b"".join((f0, values[o0], f1, values[o1], f2, values[o2], f3, values[o3], f4, values[o4], f5)), ski

    @cached_property
    def _pieces(self) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        """The TBS cut around its variable fields: the fixed bytes before each field and after the last, and the
        fields in the order they occur (indexes into ``fill``'s (serial, notBefore, point, SKI, EUI-64))."""
        fields = sorted(zip((self.serial_at, self.not_before_at, self.point_at, self.ski_at, self.eui64_at),
                            (SERIAL_OCTETS, 13, 65, 8, 8), range(5), strict=True))  # fmt: skip
        pieces, cursor = [], 0
        for at, size, _ in fields:
            pieces.append(self.der[cursor:at])
            cursor = at + size
        return (*pieces, self.der[cursor:]), tuple(index for _, _, index in fields)

    def prove(
        self, profile: ResolvedProfile, issuer: Issuer, usage: Usage, serial: bytes, now: datetime, point: bytes,
        eui64: bytes,
    ) -> bytes:  # fmt: skip
        """Build the same certificate with the cryptography builder; refuse if the bytes differ. Returns the TBS."""
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        identity = Identity(eui64=eui64.hex().upper(), usage=usage)
        builder = build_tbs(identity, public, profile, issuer, int.from_bytes(serial, "big"), now)
        expected = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).tbs_certificate_bytes
        filled, _ = self.fill(serial, utc_time(now), point, eui64)
        if filled != expected:
            raise StateError(f"the {profile.name} template and the certificate builder disagree; batch refused")
        return filled


def new_serial() -> bytes:
    """16 random octets, first octet 0x01-0x7F: positive, and DER keeps all 16."""
    while True:
        raw = bytearray(secrets.token_bytes(SERIAL_OCTETS))
        raw[0] &= 0x7F
        if raw[0]:
            return bytes(raw)


def new_serials(count: int) -> list[bytes]:
    """``count`` serials drawn as ``new_serial`` draws one (the same rule: 16 random octets, the first masked to
    0x01-0x7F, a zero first octet drawn again), from one read of the system's random source per call."""
    out: list[bytes] = []
    while len(out) < count:
        pool = secrets.token_bytes(SERIAL_OCTETS * (count - len(out)))
        for at in range(0, len(pool), SERIAL_OCTETS):
            first = pool[at] & 0x7F
            if first:
                out.append(bytes((first,)) + pool[at + 1 : at + SERIAL_OCTETS])
    return out


def batch_time(now: datetime) -> datetime:
    """notBefore for certificates issued at ``now``: whole seconds, UTC, and within UTCTime's range."""
    when = now.astimezone(timezone.utc).replace(microsecond=0)
    if when.year >= 2050:
        raise InputError("notBefore after 2049 needs GeneralizedTime; the device template encodes UTCTime")
    return when
