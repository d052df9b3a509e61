"""CSRs built at test time: good ones for each profile, and one bad one per quirk (named after it)."""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import algos, keys
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ceremony.model.der import HARDWARE_MODULE_NAME_OID, hardware_module_name

PEM = serialization.Encoding.PEM
SHA256 = hashes.SHA256()
DER = serialization.Encoding.DER
#: hwType of the demo profile set (RFC 5612 documentation arc), as in data/profiles/s1spki-secure.yaml.
DEVICE_HW_TYPE = "1.3.6.1.4.1.32473.2.1"


def _build(
    key: ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey,
    subject: x509.Name | None = None,
    algorithm: hashes.HashAlgorithm | None = SHA256,
    san: x509.SubjectAlternativeName | None = None,
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    if san is not None:
        builder = builder.add_extension(san, critical=True)
    return builder.sign(key, algorithm)  # type: ignore[arg-type]


def _hardware_module_name(eui64: str) -> x509.OtherName:
    return x509.OtherName(
        ObjectIdentifier(HARDWARE_MODULE_NAME_OID),
        hardware_module_name(DEVICE_HW_TYPE, bytes.fromhex(eui64)),
    )


def good_device_csr(eui64: str | None = None) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """P-256, empty subject; with ``eui64`` it also asks for a critical hardwareModuleName SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([_hardware_module_name(eui64)]) if eui64 else None
    return _build(key, san=san).public_bytes(PEM), key


def org_subject(eui64: str, role: str, name: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, name)] if name else []
    attrs += [
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes.fromhex(eui64), _type=_ASN1Type.BitString),
    ]
    return x509.Name(attrs)


def good_org_csr(
    eui64: str = "90B3D51F30000001", role: str = "02", name: str | None = None, *, san_eui64: str | None = None
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """P-256, subject CN (optional), OU role, x500UniqueIdentifier; ``san_eui64`` adds a hardwareModuleName SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([_hardware_module_name(san_eui64)]) if san_eui64 else None
    return _build(key, org_subject(eui64, role, name), san=san).public_bytes(PEM), key


def _pem(der: bytes, label: str = "CERTIFICATE REQUEST") -> bytes:
    from asn1crypto import pem

    return bytes(pem.armor(label, der))


def _resign(
    der: bytes,
    key: ec.EllipticCurvePrivateKey,
    *,
    spki: keys.PublicKeyInfo | None = None,
    sig_oid: str = "1.2.840.10045.4.3.2",
    null_params: bool = False,
    hash_: hashes.HashAlgorithm = SHA256,
) -> bytes:
    """Re-encode a CSR with another SPKI or signature AlgorithmIdentifier, signed by the same key."""
    request = asn1_csr.CertificationRequest.load(der)
    info = request["certification_request_info"]
    if spki is not None:
        info = asn1_csr.CertificationRequestInfo(
            {
                "version": info["version"].native,
                "subject": info["subject"],
                "subject_pk_info": spki,
                "attributes": info["attributes"],
            }
        )
    alg: dict[str, object] = {"algorithm": sig_oid}
    if null_params:
        from asn1crypto import core

        alg["parameters"] = core.Null()
    signature = key.sign(info.dump(), ec.ECDSA(hash_))
    return bytes(
        asn1_csr.CertificationRequest(
            {
                "certification_request_info": info,
                "signature_algorithm": algos.SignedDigestAlgorithm(alg),
                "signature": signature,
            }
        ).dump()
    )


def _explicit_curve() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    der = _build(key).public_bytes(DER)
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    p = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
    domain = keys.SpecifiedECDomain(
        {
            "version": "ecdpVer1",
            "field_id": {"field_type": "prime_field", "parameters": p},
            "curve": {
                "a": (p - 3).to_bytes(32, "big"),
                "b": bytes.fromhex("5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B"),
                "seed": bytes.fromhex("C49D360886E704936A6678E1139D26B7819F7E90"),
            },
            "base": bytes.fromhex(
                "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
                "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"
            ),
            "order": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
            "cofactor": 1,
        }
    )
    spki = keys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="specified", value=domain)},
            "public_key": point,
        }
    )
    return _pem(_resign(der, key, spki=spki))


def _compressed_point() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    der = _build(key).public_bytes(DER)
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    spki = keys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="named", value="secp256r1")},
            "public_key": point,
        }
    )
    return _pem(_resign(der, key, spki=spki))


def _tampered() -> bytes:
    pem_bytes, _ = good_device_csr()
    der = bytearray(x509.load_pem_x509_csr(pem_bytes).public_bytes(DER))
    der[-5] ^= 0x01  # inside the signature's s integer
    return _pem(bytes(der))


def _null_params() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return _pem(_resign(_build(key).public_bytes(DER), key, null_params=True))


def _sha1() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return _pem(_resign(_build(key).public_bytes(DER), key, sig_oid="1.2.840.10045.4.1", hash_=hashes.SHA1()))


def _with_ec_spki(parameters: keys.ECDomainParameters, point: Callable[[bytes], bytes]) -> bytes:
    """A P-256 CSR whose SPKI carries other curve parameters or an edited point, re-signed by its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = _build(key).public_bytes(DER)
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    spki = keys.PublicKeyInfo({"algorithm": {"algorithm": "ec", "parameters": parameters}, "public_key": point(raw)})
    return _pem(_resign(der, key, spki=spki))


def _p256() -> keys.ECDomainParameters:
    return keys.ECDomainParameters(name="named", value="secp256r1")


def _off_curve(point: bytes) -> bytes:
    edited = bytearray(point)
    edited[-1] ^= 0x01  # y no longer satisfies the curve equation
    return bytes(edited)


def _duplicate_san() -> bytes:
    """Two subjectAltName extensions in one extensionRequest (cryptography's builder refuses to make one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem_bytes, _ = good_device_csr("00DB123456789001")
    info = asn1_csr.CertificationRequest.load(x509.load_pem_x509_csr(pem_bytes).public_bytes(DER))[
        "certification_request_info"
    ]
    san = info["attributes"][0]["values"][0][0]
    spki = keys.PublicKeyInfo.load(key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    edited = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": info["subject"],
            "subject_pk_info": spki,
            "attributes": [{"type": "extension_request", "values": [[san, san]]}],
        }
    )
    return _pem(_sign_info(edited, key))


def _sign_info(info: asn1_csr.CertificationRequestInfo, key: ec.EllipticCurvePrivateKey) -> bytes:
    return bytes(
        asn1_csr.CertificationRequest(
            {
                "certification_request_info": info,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "1.2.840.10045.4.3.2"}),
                "signature": key.sign(info.dump(), ec.ECDSA(SHA256)),
            }
        ).dump()
    )


def _device_der() -> bytes:
    return x509.load_pem_x509_csr(good_device_csr()[0]).public_bytes(DER)


def _two_euis() -> bytes:
    """Subject x500UniqueIdentifier and SAN hardwareModuleName naming different EUI-64s."""
    return good_org_csr("00DB123456789001", "02", san_eui64="00DB123456789002")[0]


def _uid_seven_octets() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes(7), _type=_ASN1Type.BitString)]
    )
    return _build(key, name).public_bytes(PEM)


def _hmn_seven_octets() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    other = x509.OtherName(ObjectIdentifier(HARDWARE_MODULE_NAME_OID), hardware_module_name(DEVICE_HW_TYPE, bytes(7)))
    return _build(key, san=x509.SubjectAlternativeName([other])).public_bytes(PEM)


#: Each bad CSR, named by its quirk. Every one must be rejected with exit 2 and change nothing,
#: whatever the profile: none of these is a profile question alone.
BAD_CSRS: dict[str, Callable[[], bytes]] = {
    # Framing
    "garbage": lambda: b"\x8b\x00this is not a CSR at all\xff" * 3,
    "empty": lambda: b"",
    "truncated": lambda: _pem(_device_der()[:-20]),
    "der-trailing-garbage": lambda: _device_der() + b"\x00\x00",
    "pem-label-certificate": lambda: _pem(_device_der(), "CERTIFICATE"),
    "pem-label-x509-crl": lambda: _pem(_device_der(), "X509 CRL"),
    "pem-two-blocks": lambda: good_device_csr()[0] + good_device_csr()[0],
    "pem-text-before-block": lambda: b"Certificate Request:\n    Data: ...\n" + good_device_csr()[0],
    "pem-text-after-block": lambda: good_device_csr()[0] + b"subject=\n",
    "pem-bad-base64": lambda: good_device_csr()[0].replace(b"-----\nMI", b"-----\nM!", 1),
    "over-1-mib": lambda: good_device_csr()[0] + b"\n" * (1 << 20),
    # Key
    "rsa-1024": lambda: _build(rsa.generate_private_key(65537, 1024)).public_bytes(PEM),
    "rsa-2048": lambda: _build(rsa.generate_private_key(65537, 2048)).public_bytes(PEM),
    "p384": lambda: _build(ec.generate_private_key(ec.SECP384R1()), algorithm=hashes.SHA384()).public_bytes(PEM),
    "secp256k1": lambda: _build(ec.generate_private_key(ec.SECP256K1())).public_bytes(PEM),
    "ed25519": lambda: _build(ed25519.Ed25519PrivateKey.generate(), algorithm=None).public_bytes(PEM),
    "ed448": lambda: _build(ed448.Ed448PrivateKey.generate(), algorithm=None).public_bytes(PEM),
    "dsa": lambda: _build(dsa.generate_private_key(1024)).public_bytes(PEM),
    "explicit-curve-parameters": _explicit_curve,
    "implicit-ca-parameters": lambda: _with_ec_spki(
        keys.ECDomainParameters(name="implicit_ca", value=None), lambda point: point
    ),
    "compressed-point": _compressed_point,
    "point-too-short": lambda: _with_ec_spki(_p256(), lambda point: point[:-1]),
    "point-not-on-curve": lambda: _with_ec_spki(_p256(), _off_curve),
    # Signature
    "tampered-signature": _tampered,
    "sha1-signature": _sha1,
    "null-signature-parameters": _null_params,
    # Requested identity
    "x500-unique-identifier-7-octets": _uid_seven_octets,
    "hardware-module-name-7-octets": _hmn_seven_octets,
    "two-different-eui64s": _two_euis,
    "duplicate-san-extension": _duplicate_san,
}
