"""Raw DER pieces cryptography does not expose: HardwareModuleName and GBCS key identifiers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from asn1crypto import core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

#: id-on-hardwareModuleName, RFC 4108 section 5.
HARDWARE_MODULE_NAME_OID = "1.3.6.1.5.5.7.8.4"
#: x500UniqueIdentifier, a BIT STRING attribute (X.520); SMKI puts the EUI-64 there.
X500_UNIQUE_IDENTIFIER_OID = "2.5.4.45"


class HardwareModuleName(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 4108: HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }."""

    _fields = [("hw_type", core.ObjectIdentifier), ("hw_serial_num", core.OctetString)]


def hardware_module_name(hw_type: str, serial: bytes) -> bytes:
    """DER of a HardwareModuleName (the value of the SAN otherName)."""
    return bytes(HardwareModuleName({"hw_type": hw_type, "hw_serial_num": serial}).dump())


def parse_hardware_module_name(der: bytes) -> tuple[str, bytes]:
    """(hwType dotted OID, hwSerialNum octets) from the otherName value DER."""
    value = HardwareModuleName.load(der, strict=True)
    return value["hw_type"].dotted, bytes(value["hw_serial_num"].native)


def subject_public_key_bits(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """The contents of subjectPublicKeyInfo.subjectPublicKey (EC: the uncompressed point)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def gbcs_key_identifier(public_key_bits: bytes) -> bytes:
    """GBCS 12 / RFC 5280 4.2.1.2 method 2: 0100 followed by the low 60 bits of SHA-1, 8 octets."""
    low = bytearray(hashlib.sha1(public_key_bits).digest()[-8:])  # noqa: S324 - RFC 5280 names SHA-1
    low[0] = 0x40 | (low[0] & 0x0F)
    return bytes(low)


#: Signature AlgorithmIdentifier OIDs → the names profiles and findings use.
SIGNATURE_ALGORITHMS = {
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.840.10040.4.3": "dsa-with-SHA1",
}
#: Named curves → (the workbench's key algorithm name, coordinate length in octets).
NAMED_CURVES = {"secp256r1": ("ec-p256", 32), "secp384r1": ("ec-p384", 48), "secp521r1": ("ec-p521", 66)}


def key_size_bits(algorithm: str) -> int | None:
    """Bits of a key named as in ``KeyFacts.algorithm``: ec-p256 -> 256, rsa-2048 -> 2048; None if unknown."""
    kind, _, size = algorithm.partition("-")
    digits = size.removeprefix("p")
    return int(digits) if kind in ("ec", "rsa") and digits.isdigit() else None


def signature_name(oid: str) -> str:
    return SIGNATURE_ALGORITHMS.get(oid, oid)


@dataclass(frozen=True)
class KeyFacts:
    """What a SubjectPublicKeyInfo's encoding says, read from the DER (cryptography normalises some of it)."""

    algorithm: str  # "ec-p256", "ec-secp256k1", "rsa-2048", "ed25519", ...
    curve: str | None = None
    explicit_parameters: bool = False
    point_uncompressed: bool = True


def key_facts(spki: Any) -> KeyFacts:
    """Facts about an asn1crypto ``PublicKeyInfo`` (RFC 5480: named curve, uncompressed point)."""
    algorithm = str(spki["algorithm"]["algorithm"].native)
    if algorithm == "ec":
        params = spki["algorithm"]["parameters"]
        # RFC 5480 2.1.1: namedCurve only; explicit (specifiedCurve), implicitCA or missing are refused.
        if getattr(params, "name", None) != "named":
            return KeyFacts("ec-unnamed-curve", explicit_parameters=True)
        curve = str(params.chosen.native)
        name, size = NAMED_CURVES.get(curve, (f"ec-{curve}", 0))
        point = bytes(spki["public_key"].contents[1:])  # after the BIT STRING's unused-bits octet
        uncompressed = point[:1] == b"\x04" and (not size or len(point) == 1 + 2 * size)
        return KeyFacts(name, curve=curve, point_uncompressed=uncompressed)
    if algorithm == "rsa":
        return KeyFacts(f"rsa-{spki['public_key'].parsed['modulus'].native.bit_length()}")
    return KeyFacts(algorithm)


def serial_hex(serial: int) -> str:
    return f"{serial:032X}"


def certificate_spki(der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER certificate, sliced out of its bytes by walking the elements of
    tbsCertificate (RFC 5280 4.1: [0] version, serialNumber, signature, issuer, validity, subject,
    subjectPublicKeyInfo) with nothing else parsed: one-octet tags, definite lengths of at most four octets
    (X.690 8.1.2-8.1.3), each element inside its container; ValueError when the bytes are not so shaped."""
    end = len(der)
    at = 0
    spki = b""
    for wanted, enter in _CERTIFICATE_WALK:
        if at + 2 > end:
            raise ValueError("truncated certificate")
        tag, size = der[at], der[at + 1]
        start = at + 2
        if size & 0x80:
            octets = size & 0x7F
            if not 1 <= octets <= 4 or start + octets > end:
                raise ValueError("bad DER length in a certificate")
            size = int.from_bytes(der[start : start + octets], "big")
            start += octets
        if start + size > end:
            raise ValueError("a certificate's DER element runs past its container")
        if tag != wanted:
            if wanted == 0xA0:  # no version: the serialNumber is here (checked next)
                continue
            raise ValueError(f"certificate element {tag:#04x} where {wanted:#04x} belongs")
        if enter:
            at, end = start, start + size
        else:
            spki = der[at : start + size]
            at = start + size
    return spki


#: (tag, entered) in walk order: Certificate and tbsCertificate are entered; [0] version (absent in v1),
#: serialNumber, signature, issuer, validity, subject and subjectPublicKeyInfo are skipped (the last is returned).
_CERTIFICATE_WALK = ((0x30, True), (0x30, True), (0xA0, False), (0x02, False), *[(0x30, False)] * 5)
