"""Raw DER pieces cryptography does not expose: HardwareModuleName and GBCS key identifiers."""

from __future__ import annotations

import hashlib

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
