"""Pure TBS builder: (identity, public key, profile, issuer, serial, now) → CertificateBuilder.

Never reads the clock, the RNG, files or the token: the caller passes ``serial`` and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ceremony.errors import InputError
from ceremony.model.algorithms import CAPublicKey
from ceremony.model.der import (
    HARDWARE_MODULE_NAME_OID,
    gbcs_key_identifier,
    hardware_module_name,
    subject_public_key_bits,
)
from ceremony.model.profiles import KeyUsageBit, ResolvedProfile

Usage = Literal["ds", "ka"]
USAGE_BITS: dict[str, KeyUsageBit] = {"ds": "digitalSignature", "ka": "keyAgreement"}
#: GBCS 12.2: device certificates carry no expiry.
SENTINEL_FORMAT = "%Y%m%d%H%M%SZ"

_ATTRIBUTE_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "x500UniqueIdentifier": NameOID.X500_UNIQUE_IDENTIFIER,
}
_ENCODINGS = {"utf8String": _ASN1Type.UTF8String, "printableString": _ASN1Type.PrintableString}


@dataclass(frozen=True)
class Identity:
    """The approved identity of a certificate (never taken from a CSR alone)."""

    eui64: str | None = None  # 16 uppercase hex digits
    usage: Usage | None = None  # end entities: one key usage per certificate
    role: str | None = None  # RemotePartyRole, 2 uppercase hex digits
    name: str | None = None  # CN


@dataclass(frozen=True)
class Issuer:
    """What the builder needs of the issuing CA (None for a self-signed root)."""

    name: x509.Name
    key_identifier: bytes
    not_after: datetime


def key_identifier(public_key: CAPublicKey) -> bytes:
    return gbcs_key_identifier(subject_public_key_bits(public_key))


def subject_name(profile: ResolvedProfile, identity: Identity) -> x509.Name:
    """The subject DN the profile builds from an identity (also what a well-formed CSR asks for)."""
    rule = profile.rules.subject
    if rule.form == "empty":
        return x509.Name([])
    values = {"name": identity.name, "role": identity.role, "eui64": identity.eui64}
    attributes: list[x509.NameAttribute[str | bytes]] = []
    for attr in rule.attributes:
        value = values[attr.source]
        if value is None:
            if attr.required:
                raise InputError(f"profile {profile.name} needs a {attr.source} for {attr.type}")
            continue
        if attr.type == "x500UniqueIdentifier":
            # A BIT STRING: cryptography takes the unused-bits octet (0) before the 8 EUI-64 octets.
            attributes.append(
                x509.NameAttribute(
                    NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes.fromhex(value), _type=_ASN1Type.BitString
                )
            )
        else:
            attributes.append(
                x509.NameAttribute(_ATTRIBUTE_OIDS[attr.type], value, _type=_ENCODINGS[attr.encodings[0]])
            )
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes])


def _validity(
    profile: ResolvedProfile, issuer: Issuer | None, now: datetime, days: int | None
) -> tuple[datetime, datetime]:
    rule = profile.rules.validity
    not_before = now.astimezone(timezone.utc).replace(microsecond=0)
    if rule.fixed_not_after:
        if days is not None:
            raise InputError(f"profile {profile.name} has a fixed notAfter; a validity cannot be chosen")
        return not_before, datetime.strptime(rule.fixed_not_after, SENTINEL_FORMAT).replace(tzinfo=timezone.utc)
    days = rule.default_days if days is None else days
    if rule.max_days is not None and days > rule.max_days:
        raise InputError(f"validity of {days} days exceeds profile {profile.name}'s maximum of {rule.max_days}")
    not_after = not_before + timedelta(days=days) - timedelta(seconds=1)
    if issuer is not None and rule.within_issuer and not_after > issuer.not_after:
        raise InputError(
            f"validity would end {not_after:%Y-%m-%d} after the issuer's notAfter "
            f"{issuer.not_after:%Y-%m-%d}; choose fewer days"
        )
    return not_before, not_after


def check_validity(profile: ResolvedProfile, days: int | None, now: datetime, issuer: Issuer | None = None) -> None:
    """Refuse, as :func:`build_tbs` would, a validity the profile (or the issuer's notAfter) does not allow:
    the ceremony pre-flight asks before any key exists."""
    _validity(profile, issuer, now, days)


def build_tbs(
    identity: Identity,
    public_key: CAPublicKey,
    profile: ResolvedProfile,
    issuer: Issuer | None,
    serial: int,
    now: datetime,
    *,
    days: int | None = None,
) -> x509.CertificateBuilder:
    """The certificate to sign, in the profile's extension order (GBCS 12 observed order for EEs)."""
    rules = profile.rules
    ext = rules.extensions
    subject = subject_name(profile, identity)
    not_before, not_after = _validity(profile, issuer, now, days)
    ski = key_identifier(public_key)
    builder = (
        x509.CertificateBuilder()
        .serial_number(serial)
        .subject_name(subject)
        .issuer_name(issuer.name if issuer else subject)
        .public_key(public_key)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ext.basic_constraints.presence == "required":
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ext.basic_constraints.ca, path_length=ext.basic_constraints.path_length),
            critical=bool(ext.basic_constraints.critical),
        )
    bits: set[KeyUsageBit] = set(ext.key_usage.bits)
    if ext.key_usage.one_of:
        if identity.usage is None:
            raise InputError(f"profile {profile.name} needs a usage (ds or ka)")
        bits = {USAGE_BITS[identity.usage]}
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature="digitalSignature" in bits,
            content_commitment="nonRepudiation" in bits,
            key_encipherment="keyEncipherment" in bits,
            data_encipherment="dataEncipherment" in bits,
            key_agreement="keyAgreement" in bits,
            key_cert_sign="keyCertSign" in bits,
            crl_sign="cRLSign" in bits,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=bool(ext.key_usage.critical),
    )
    builder = builder.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    if ext.subject_alt_name.presence == "required":
        hw_type = profile.hw_type_oid
        if hw_type is None or identity.eui64 is None:
            raise InputError(f"profile {profile.name} needs an EUI-64 for the hardwareModuleName")
        other = x509.OtherName(
            ObjectIdentifier(HARDWARE_MODULE_NAME_OID), hardware_module_name(hw_type, bytes.fromhex(identity.eui64))
        )
        builder = builder.add_extension(
            x509.SubjectAlternativeName([other]), critical=bool(ext.subject_alt_name.critical)
        )
    builder = builder.add_extension(
        x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(oid), None) for oid in profile.policy_oids]),
        critical=bool(ext.certificate_policies.critical),
    )
    if issuer is not None and ext.authority_key_identifier.presence != "absent":
        # GBCS 12: AKI carries only [0] keyIdentifier.
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(issuer.key_identifier, None, None),
            critical=bool(ext.authority_key_identifier.critical),
        )
    return builder
