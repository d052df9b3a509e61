"""Mutants of certificates, built at test time: edit the TBS with asn1crypto, re-sign with a throwaway key.

Shape checks do not need the real issuer's signature, so a mutant of a real DCC certificate
is re-signed with a fresh key; the profile checks then see exactly one defect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from asn1crypto import core, keys
from asn1crypto import x509 as ax
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

Mutation = Callable[[ax.TbsCertificate], None]
_SIGNER = ec.generate_private_key(ec.SECP256R1())


def resign(tbs: ax.TbsCertificate, algorithm: ax.SignedDigestAlgorithm) -> bytes:
    data = tbs.dump(force=True)
    signature = _SIGNER.sign(data, ec.ECDSA(hashes.SHA256()))
    return bytes(
        ax.Certificate(
            {
                "tbs_certificate": ax.TbsCertificate.load(data),
                "signature_algorithm": algorithm,
                "signature_value": signature,
            }
        ).dump()
    )


def mutate(der: bytes, mutation: Mutation) -> bytes:
    cert = ax.Certificate.load(der)
    tbs = ax.TbsCertificate.load(cert["tbs_certificate"].dump())
    mutation(tbs)
    return resign(tbs, cert["signature_algorithm"])


def _ext(tbs: ax.TbsCertificate, name: str) -> ax.Extension:
    return next(e for e in tbs["extensions"] if e["extn_id"].native == name)


def flip_critical(name: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        ext = _ext(tbs, name)
        ext["critical"] = not ext["critical"].native

    return mutation


def drop_extension(name: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        tbs["extensions"] = ax.Extensions([e for e in tbs["extensions"] if e["extn_id"].native != name])

    return mutation


def set_extension(name: str, value: core.Asn1Value, critical: bool) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        others = [e for e in tbs["extensions"] if e["extn_id"].native != name]
        others.append(ax.Extension({"extn_id": name, "critical": critical, "extn_value": value}))
        tbs["extensions"] = ax.Extensions(others)

    return mutation


def two_key_usage_bits(tbs: ax.TbsCertificate) -> None:
    set_extension("key_usage", ax.KeyUsage({"digital_signature", "key_agreement"}), True)(tbs)


def replace_key(private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        tbs["subject_public_key_info"] = keys.PublicKeyInfo.load(spki)

    return mutation


def ski_of_length(octets: int) -> Mutation:
    return set_extension("key_identifier", core.OctetString(b"\x41" * octets), False)


def ski_not_method2(tbs: ax.TbsCertificate) -> None:
    set_extension("key_identifier", core.OctetString(bytes.fromhex("4000000000000001")), False)(tbs)


def subject(attributes: list[tuple[str, core.Asn1Value]]) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        rdns = [
            ax.RelativeDistinguishedName([ax.NameTypeAndValue({"type": oid, "value": value})])
            for oid, value in attributes
        ]
        tbs["subject"] = ax.Name(name="", value=ax.RDNSequence(rdns))

    return mutation


def device_san(eui: bytes, hw_type: str) -> Mutation:
    from ceremony.der import HARDWARE_MODULE_NAME_OID, hardware_module_name

    def mutation(tbs: ax.TbsCertificate) -> None:
        # otherName: [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT HardwareModuleName }
        body = core.ObjectIdentifier(HARDWARE_MODULE_NAME_OID).dump() + _tlv(0xA0, hardware_module_name(hw_type, eui))
        names = ax.GeneralNames.load(_tlv(0x30, _tlv(0xA0, body)))
        set_extension("subject_alt_name", names, True)(tbs)

    return mutation


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = (
        bytes([n])
        if n < 128
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + content


def not_after(when: datetime) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        value = ax.Time(name="utc_time" if when.year < 2050 else "general_time", value=when)
        tbs["validity"] = ax.Validity({"not_before": tbs["validity"]["not_before"], "not_after": value})

    return mutation


def ca_true(tbs: ax.TbsCertificate) -> None:
    set_extension("basic_constraints", ax.BasicConstraints({"ca": True}), True)(tbs)


def unique_identifier(eui: bytes) -> core.Asn1Value:
    return core.OctetBitString(eui)


EARLY = datetime(2030, 1, 1, tzinfo=timezone.utc)
