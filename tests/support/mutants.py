"""Certificates and their mutants, built at test time.

Builders: a root → issuing → end-entity chain made directly with cryptography to the
s1spki-secure shapes (profiles A-D), independent of ``ceremony.model.tbs`` so the checks are not
graded by the code they check. Mutants: edit a certificate's TBS with asn1crypto and re-sign
with a throwaway key; shape checks do not need the real issuer's signature, so each mutant of
a real DCC certificate or of a built one carries exactly the one defect it is named after
(mutations that move the key also move the SKI, so the SKI stays method 2).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from asn1crypto import core, keys
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

Mutation = Callable[[ax.TbsCertificate], None]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: The s1spki-secure demo OIDs (RFC 5612 documentation arc), as in data/profiles/s1spki-secure.yaml.
TEST_POLICY = "1.3.6.1.4.1.32473.1.1.1"
TEST_HW_TYPE = "1.3.6.1.4.1.32473.2.1"
#: The smki-test hwType (real DCC test device certificates).
SMKI_HW_TYPE = "1.2.826.0.1.8641679.1.2.2.1"
HARDWARE_MODULE_NAME = "1.3.6.1.5.5.7.8.4"
X500_UNIQUE_IDENTIFIER = "2.5.4.45"
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
EARLY = datetime(2030, 1, 1, tzinfo=timezone.utc)
SENTINEL = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)

_SIGNER = ec.generate_private_key(ec.SECP256R1())
_NULL_ECDSA_SHA256 = bytes.fromhex("300c06082a8648ce3d0403020500")


# --- independent GBCS encodings ---------------------------------------------------------
def method2(public_key_bits: bytes) -> bytes:
    """GBCS 12 key identifier, written out again here: 0100 + low 60 bits of SHA-1, 8 octets."""
    digest = hashlib.sha1(public_key_bits).digest()[-8:]  # noqa: S324 - RFC 5280 4.2.1.2 names SHA-1
    return bytes([0x40 | (digest[0] & 0x0F)]) + digest[1:]


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 128:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def _oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()  # type: ignore[no-any-return]


def hardware_module_name(hw_type: str, serial: bytes) -> bytes:
    """RFC 4108 HardwareModuleName DER: SEQUENCE { hwType OID, hwSerialNum OCTET STRING }."""
    return _tlv(0x30, _oid(hw_type) + _tlv(0x04, serial))


def _bits(key: PrivateKey) -> bytes:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def serial16() -> int:
    """A positive serial of exactly 16 octets (DOMAIN.md profiles A-D)."""
    return secrets.randbits(126) | (1 << 126)


# --- builders (cryptography) -------------------------------------------------------------
@dataclass(frozen=True)
class Built:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def ski(self) -> bytes:
        return method2(_bits(self.key))


def _name(cn: str | None, ou: str | None, eui64: bytes | None) -> x509.Name:
    attributes: list[x509.NameAttribute[str | bytes]] = []
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn, _type=_ASN1Type.UTF8String))
    if ou is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou, _type=_ASN1Type.UTF8String))
    if eui64 is not None:
        # x500UniqueIdentifier is a BIT STRING: unused-bits octet 0x00, then the 8 EUI-64 octets.
        attributes.append(
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + eui64, _type=_ASN1Type.BitString)
        )
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes])


def _usage(*bits: str) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: n in bits for n in names})


def _builder(
    subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: Built | None, not_before: datetime, not_after: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .serial_number(serial16())
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _finish(
    builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey, issuer: Built | None, policy: str
) -> x509.CertificateBuilder:
    builder = builder.add_extension(
        x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(policy), None)]), critical=True
    )
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(issuer.ski, None, None), critical=False)
    return builder


def build_ca(name: str = "Test Root", *, issuer: Built | None = None, days: int = 9131, now: datetime = NOW) -> Built:
    """A root (profile A, OU=00, pathLen 1) or, with ``issuer``, an issuing CA (profile B, OU=07, pathLen 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name, "07" if issuer else "00", None)
    builder = (
        _builder(subject, key, issuer, now, now + timedelta(days=days) - timedelta(seconds=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else 1), critical=True)
        .add_extension(_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(method2(_bits(key))), critical=False)
    )
    signer = issuer.key if issuer else key
    return Built(_finish(builder, key, issuer, TEST_POLICY).sign(signer, hashes.SHA256()), key)


def build_device(
    issuer: Built,
    eui64: bytes = bytes.fromhex("00DB123456789001"),
    *,
    usage: str = "digital_signature",
    hw_type: str = TEST_HW_TYPE,
    policy: str = TEST_POLICY,
    now: datetime = NOW,
) -> Built:
    """GBCS 12.2 / profile D: empty subject, critical hardwareModuleName SAN, notAfter 99991231235959Z."""
    key = ec.generate_private_key(ec.SECP256R1())
    other = x509.OtherName(ObjectIdentifier(HARDWARE_MODULE_NAME), hardware_module_name(hw_type, eui64))
    builder = (
        _builder(x509.Name([]), key, issuer, now, SENTINEL)
        .add_extension(_usage(usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(method2(_bits(key))), critical=False)
        .add_extension(x509.SubjectAlternativeName([other]), critical=True)
    )
    return Built(_finish(builder, key, issuer, policy).sign(issuer.key, hashes.SHA256()), key)


def build_organisation(
    issuer: Built,
    eui64: bytes = bytes.fromhex("90B3D51F30000001"),
    *,
    role: str = "02",
    name: str | None = "GITTESTSUPPLIER",
    usage: str = "key_agreement",
    days: int = 1826,
    now: datetime = NOW,
) -> Built:
    """SMKI organisation layout / profile C: [CN], OU role, x500UniqueIdentifier EUI-64; one key usage."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(name, role, eui64), key, issuer, now, now + timedelta(days=days) - timedelta(seconds=1))
        .add_extension(_usage(usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(method2(_bits(key))), critical=False)
    )
    return Built(_finish(builder, key, issuer, TEST_POLICY).sign(issuer.key, hashes.SHA256()), key)


# --- mutation machinery ------------------------------------------------------------------
def resign(tbs: ax.TbsCertificate, *, signer: PrivateKey | None = None, outer: bytes | None = None) -> bytes:
    """Sign the TBS with a throwaway key; the outer AlgorithmIdentifier repeats tbs.signature unless given."""
    # No force: untouched fields keep their original bytes, edited ones are re-encoded (asn1crypto
    # tracks mutation through nested sequences), so a mutant differs from its base only where edited.
    data = tbs.dump()
    key = signer or _SIGNER
    if isinstance(key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    algorithm = ax.SignedDigestAlgorithm.load(outer if outer is not None else tbs["signature"].dump())
    return bytes(
        ax.Certificate(
            {
                "tbs_certificate": ax.TbsCertificate.load(data),
                "signature_algorithm": algorithm,
                "signature_value": signature,
            }
        ).dump()
    )


def mutate(der: bytes, *mutations: Mutation, signer: PrivateKey | None = None, outer: bytes | None = None) -> bytes:
    """The certificate with ``mutations`` applied to its TBS, re-signed (no mutation: a plain re-sign)."""
    cert = ax.Certificate.load(der)
    tbs = ax.TbsCertificate.load(cert["tbs_certificate"].dump())
    for mutation in mutations:
        mutation(tbs)
    return resign(tbs, signer=signer, outer=outer)


def _extensions(tbs: ax.TbsCertificate) -> list[ax.Extension]:
    return list(tbs["extensions"])


def _ext(tbs: ax.TbsCertificate, name: str) -> ax.Extension:
    return next(e for e in _extensions(tbs) if e["extn_id"].native == name)


def flip_critical(name: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        ext = _ext(tbs, name)
        ext["critical"] = not ext["critical"].native

    return mutation


def drop_extension(name: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        tbs["extensions"] = ax.Extensions([e for e in _extensions(tbs) if e["extn_id"].native != name])

    return mutation


def set_extension(name: str, value: core.Asn1Value | bytes, critical: bool) -> Mutation:
    """Replace the extension in place (or append it): extension order stays as it was."""

    def mutation(tbs: ax.TbsCertificate) -> None:
        new = ax.Extension({"extn_id": name, "critical": critical, "extn_value": value})
        old = _extensions(tbs)
        names = [e["extn_id"].native for e in old]
        if name in names:
            old[names.index(name)] = new
        else:
            old.append(new)
        tbs["extensions"] = ax.Extensions(old)

    return mutation


def duplicate_extension(name: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        ext = _ext(tbs, name)
        tbs["extensions"] = ax.Extensions([*_extensions(tbs), ax.Extension.load(ext.dump())])

    return mutation


def unknown_extension(tbs: ax.TbsCertificate) -> None:
    set_extension("1.3.6.1.4.1.32473.9.9", core.Null().dump(), False)(tbs)


def key_usage(*bits: str) -> Mutation:
    return set_extension("key_usage", ax.KeyUsage(set(bits)), True)


def two_key_usage_bits(tbs: ax.TbsCertificate) -> None:
    key_usage("digital_signature", "key_agreement")(tbs)


def _set_spki(tbs: ax.TbsCertificate, spki: keys.PublicKeyInfo) -> None:
    tbs["subject_public_key_info"] = keys.PublicKeyInfo.load(spki.dump())
    bits = bytes(tbs["subject_public_key_info"]["public_key"].contents[1:])
    if any(e["extn_id"].native == "key_identifier" for e in _extensions(tbs)):
        # Keep the SKI method 2 over the new key, so only the key defect shows.
        set_extension("key_identifier", core.OctetString(method2(bits)), False)(tbs)


def replace_key(private: PrivateKey) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _set_spki(tbs, keys.PublicKeyInfo.load(spki))

    return mutation


def ec_point(edit: Callable[[ec.EllipticCurvePublicKey], bytes], curve: str = "secp256r1") -> Mutation:
    """A P-256 key whose subjectPublicKey is ``edit(key)`` (compressed form, off-curve point, ...)."""

    def mutation(tbs: ax.TbsCertificate) -> None:
        point = edit(ec.generate_private_key(ec.SECP256R1()).public_key())
        parameters = keys.ECDomainParameters(name="named", value=curve)
        _set_spki(
            tbs, keys.PublicKeyInfo({"algorithm": {"algorithm": "ec", "parameters": parameters}, "public_key": point})
        )

    return mutation


def compressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)


def off_curve(key: ec.EllipticCurvePublicKey) -> bytes:
    point = bytearray(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    point[-1] ^= 0x01  # y no longer satisfies the curve equation
    return bytes(point)


def implicit_ca(tbs: ax.TbsCertificate) -> None:
    """RFC 5480 2.1.1 forbids implicitCA: the key names no curve."""
    point = _bits(ec.generate_private_key(ec.SECP256R1()))
    parameters = keys.ECDomainParameters(name="implicit_ca", value=None)
    _set_spki(
        tbs, keys.PublicKeyInfo({"algorithm": {"algorithm": "ec", "parameters": parameters}, "public_key": point})
    )


def ski(value: bytes) -> Mutation:
    return set_extension("key_identifier", core.OctetString(value), False)


def ski_of_length(octets: int) -> Mutation:
    return ski(b"\x41" * octets)


def ski_not_method2(tbs: ax.TbsCertificate) -> None:
    ski(bytes.fromhex("4000000000000001"))(tbs)


def aki(value: dict[str, object]) -> Mutation:
    return set_extension("authority_key_identifier", ax.AuthorityKeyIdentifier(value), False)


def aki_with_issuer_and_serial(tbs: ax.TbsCertificate) -> None:
    key_id = _ext(tbs, "authority_key_identifier")["extn_value"].parsed["key_identifier"].native
    directory = ax.GeneralName(name="directory_name", value=ax.Name.build({"common_name": "CA"}))
    aki({"key_identifier": key_id, "authority_cert_issuer": [directory], "authority_cert_serial_number": 1})(tbs)


def subject(attributes: list[tuple[str, core.Asn1Value]], *, multi_valued: bool = False) -> Mutation:
    """Replace the subject with these (OID, value) attributes, one per RDN (or all in one)."""

    def mutation(tbs: ax.TbsCertificate) -> None:
        atvs = [ax.NameTypeAndValue({"type": oid, "value": value}) for oid, value in attributes]
        rdns = (
            [ax.RelativeDistinguishedName(atvs)] if multi_valued else [ax.RelativeDistinguishedName([a]) for a in atvs]
        )
        tbs["subject"] = ax.Name(name="", value=ax.RDNSequence(rdns))

    return mutation


def unique_identifier(eui: bytes) -> core.Asn1Value:
    """x500UniqueIdentifier value: a BIT STRING of len(eui)*8 bits."""
    return core.OctetBitString(eui)


def org_subject(role: str = "02", eui: bytes = b"\x90" * 8, cn: str | None = None) -> Mutation:
    attributes: list[tuple[str, core.Asn1Value]] = [("2.5.4.3", core.UTF8String(cn))] if cn else []
    return subject([*attributes, ("2.5.4.11", core.UTF8String(role)), (X500_UNIQUE_IDENTIFIER, unique_identifier(eui))])


def _general_names(*bodies: bytes) -> ax.GeneralNames:
    return ax.GeneralNames.load(_tlv(0x30, b"".join(bodies)))


def _hardware_other_name(hw_type: str, eui: bytes) -> bytes:
    # otherName: [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT HardwareModuleName }
    return _tlv(0xA0, _oid(HARDWARE_MODULE_NAME) + _tlv(0xA0, hardware_module_name(hw_type, eui)))


def device_san(eui: bytes, hw_type: str, *, extra_dns: str | None = None, critical: bool = True) -> Mutation:
    bodies = [_hardware_other_name(hw_type, eui)]
    if extra_dns is not None:
        bodies.append(_tlv(0x82, extra_dns.encode()))
    return set_extension("subject_alt_name", _general_names(*bodies), critical)


def device_san_like(
    template: bytes, *, eui: bytes | None = None, hw_type: str | None = None, extra_dns: str | None = None
) -> Mutation:
    """The certificate's own hardwareModuleName with the EUI or the hwType replaced (or a second name)."""
    from ceremony.model.der import parse_hardware_module_name

    cert = ax.Certificate.load(template)
    name = next(e for e in cert["tbs_certificate"]["extensions"] if e["extn_id"].native == "subject_alt_name")
    other = name["extn_value"].parsed[0].chosen
    raw = bytes(other["value"].dump())
    inner = raw[2:] if raw[0] == 0xA0 and raw[1] < 0x80 else raw  # [0] EXPLICIT, short form
    own_type, own_serial = parse_hardware_module_name(inner)
    return device_san(own_serial if eui is None else eui, own_type if hw_type is None else hw_type, extra_dns=extra_dns)


def validity(
    not_before: datetime | None = None, not_after: datetime | None = None, *, encoding: str | None = None
) -> Mutation:
    """Replace notBefore/notAfter; the time type follows RFC 5280 4.1.2.5 unless ``encoding`` forces one."""

    def time(when: datetime) -> ax.Time:
        name = encoding or ("utc_time" if when.year < 2050 else "general_time")
        return ax.Time(name=name, value=when)

    def mutation(tbs: ax.TbsCertificate) -> None:
        old = tbs["validity"]
        tbs["validity"] = ax.Validity(
            {
                "not_before": time(not_before) if not_before else old["not_before"],
                "not_after": time(not_after) if not_after else old["not_after"],
            }
        )

    return mutation


def time_type(field_name: str, encoding: str) -> Mutation:
    """The same instant in another ASN.1 time type (RFC 5280 4.1.2.5 fixes which one is allowed)."""

    def mutation(tbs: ax.TbsCertificate) -> None:
        when = tbs["validity"][field_name].native
        validity(**{field_name: when}, encoding=encoding)(tbs)

    return mutation


def lasting(days: int) -> Mutation:
    """notAfter = notBefore + days - 1 s: a validity of ``days`` days (RFC 5280: notAfter is inclusive)."""

    def mutation(tbs: ax.TbsCertificate) -> None:
        start = tbs["validity"]["not_before"].native
        validity(not_after=start + timedelta(days=days) - timedelta(seconds=1))(tbs)

    return mutation


def not_after(when: datetime) -> Mutation:
    return validity(not_after=when)


def ca_true(tbs: ax.TbsCertificate) -> None:
    set_extension("basic_constraints", ax.BasicConstraints({"ca": True}), True)(tbs)


def version(name: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        tbs["version"] = name

    return mutation


def serial(value: int) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        tbs["serial_number"] = value

    return mutation


def policies(*oids: str) -> Mutation:
    return set_extension(
        "certificate_policies", ax.CertificatePolicies([{"policy_identifier": oid} for oid in oids]), True
    )


def add_policy(oid: str) -> Mutation:
    def mutation(tbs: ax.TbsCertificate) -> None:
        own = [p["policy_identifier"].dotted for p in _ext(tbs, "certificate_policies")["extn_value"].parsed]
        policies(*own, oid)(tbs)

    return mutation


def signature_algorithm(der: bytes) -> Mutation:
    """tbsCertificate.signature (and, through resign, the outer one) from this AlgorithmIdentifier DER."""

    def mutation(tbs: ax.TbsCertificate) -> None:
        tbs["signature"] = ax.SignedDigestAlgorithm.load(der)

    return mutation


null_signature_parameters = signature_algorithm(_NULL_ECDSA_SHA256)
SHA256_RSA = ax.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": core.Null()}).dump()
ECDSA_SHA384 = ax.SignedDigestAlgorithm({"algorithm": "sha384_ecdsa"}).dump()
ECDSA_SHA256 = ax.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()


def ekus(*purposes: str) -> Mutation:
    return set_extension("extended_key_usage", ax.ExtKeyUsageSyntax(list(purposes)), False)


def subject_of(der: bytes) -> ax.Name:
    return ax.Certificate.load(der)["tbs_certificate"]["subject"]


def no_change(tbs: ax.TbsCertificate) -> None:
    """The identity mutation: a plain re-sign with the throwaway key."""


# --- CRLs --------------------------------------------------------------------------------
CRLMutation = Callable[[asn1_crl.TbsCertList], None]


def build_crl(issuer: Built, *, number: int = 1, now: datetime = NOW, revoked: tuple[int, ...] = ()) -> bytes:
    """A profile E CRL: v2, ecdsa-with-SHA256, cRLNumber, AKI keyIdentifier, nextUpdate = +7 days."""
    entries = [x509.RevokedCertificateBuilder().serial_number(s).revocation_date(now).build() for s in revoked]
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=entries)
        if entries
        else x509.CertificateRevocationListBuilder()
    )
    crl = (
        builder.issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(now + timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(issuer.ski, None, None), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


def mutate_crl(der: bytes, *mutations: CRLMutation, outer: bytes | None = None) -> bytes:
    """The CRL with ``mutations`` applied to its tbsCertList, re-signed with the throwaway key."""
    tbs = asn1_crl.TbsCertList.load(asn1_crl.CertificateList.load(der)["tbs_cert_list"].dump())
    for mutation in mutations:
        mutation(tbs)
    data = tbs.dump()
    algorithm = ax.SignedDigestAlgorithm.load(outer if outer is not None else tbs["signature"].dump())
    return bytes(
        asn1_crl.CertificateList(
            {
                "tbs_cert_list": asn1_crl.TbsCertList.load(data),
                "signature_algorithm": algorithm,
                "signature": _SIGNER.sign(data, ec.ECDSA(hashes.SHA256())),
            }
        ).dump()
    )


def drop_crl_extension(name: str) -> CRLMutation:
    def mutation(tbs: asn1_crl.TbsCertList) -> None:
        tbs["crl_extensions"] = asn1_crl.TBSCertListExtensions(
            [e for e in tbs["crl_extensions"] if e["extn_id"].native != name]
        )

    return mutation


def crl_field(name: str, value: object) -> CRLMutation:
    def mutation(tbs: asn1_crl.TbsCertList) -> None:
        tbs[name] = value

    return mutation
