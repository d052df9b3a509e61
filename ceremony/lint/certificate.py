"""Certificate and CRL profile checks over the raw DER (asn1crypto): findings, never exceptions.

cryptography hides encodings (NULL signature parameters, explicit curves, time types) and
refuses some real certificates, so every check reads the ASN.1 itself. Each check is a small
function; a check that crashes yields a FATAL finding naming it (pkilint's habit). Only bytes
that are no certificate at all raise, as ``InputError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from asn1crypto import core, parser
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ceremony.clock import current
from ceremony.errors import InputError
from ceremony.lint.findings import Finding, Severity
from ceremony.model.der import (
    HARDWARE_MODULE_NAME_OID,
    X500_UNIQUE_IDENTIFIER_OID,
    gbcs_key_identifier,
    key_facts,
    parse_hardware_module_name,
    signature_name,
)
from ceremony.model.profiles import ExtensionRule, ResolvedProfile, Violation

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "ecdsa-with-SHA256": hashes.SHA256(),
    "ecdsa-with-SHA384": hashes.SHA384(),
    "ecdsa-with-SHA512": hashes.SHA512(),
    "sha256WithRSAEncryption": hashes.SHA256(),
    "sha384WithRSAEncryption": hashes.SHA384(),
}
_CURVES: dict[str, ec.EllipticCurve] = {
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "secp521r1": ec.SECP521R1(),
}
#: Extension OIDs the profiles speak about → (rule attribute, short code).
EXTENSIONS = {
    "2.5.29.19": ("basic_constraints", "basic_constraints"),
    "2.5.29.15": ("key_usage", "key_usage"),
    "2.5.29.14": ("subject_key_identifier", "ski"),
    "2.5.29.35": ("authority_key_identifier", "aki"),
    "2.5.29.32": ("certificate_policies", "policies"),
    "2.5.29.17": ("subject_alt_name", "san"),
    "2.5.29.37": ("extended_key_usage", "eku"),
    "2.5.29.31": ("crl_distribution_points", "crl_dp"),
}
_KU_NAMES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "non_repudiation",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
_ATTRIBUTES = {"2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.10": "O", X500_UNIQUE_IDENTIFIER_OID: "x500UniqueIdentifier"}
_STRING_TYPES = {12: "utf8String", 19: "printableString"}
#: RFC 5280 4.1.2.5.1/4.1.2.5.2: seconds always present, always Zulu, no fractions.
_TIME_FORMATS = {"utc_time": re.compile(rb"\d{12}Z"), "general_time": re.compile(rb"\d{14}Z")}
_FIXED_TIME = "%Y%m%d%H%M%SZ"


def severity(on_violation: Violation) -> Severity:
    """The severity a profile rule's ``on_violation`` asks for."""
    return Severity.WARNING if on_violation == "warning" else Severity.ERROR


@dataclass(frozen=True)
class ParsedCertificate:
    """A certificate parsed once (asn1crypto), shared by every profile it is checked against."""

    der: bytes
    cert: Any  # asn1crypto.x509.Certificate (untyped library)
    source: str = ""

    @property
    def tbs(self) -> Any:
        return self.cert["tbs_certificate"]

    @cached_property
    def extensions(self) -> list[tuple[str, bool, Any]]:
        """(dotted OID, critical, Extension) in certificate order; empty for v1/v2 certificates."""
        return [(e["extn_id"].dotted, bool(e["critical"].native), e) for e in self.tbs["extensions"]]

    @cached_property
    def public_key_bits(self) -> bytes:
        """subjectPublicKey BIT STRING contents after the unused-bits octet (EC: the point)."""
        return bytes(self.tbs["subject_public_key_info"]["public_key"].contents[1:])


def parse_certificate(der: bytes, source: str = "") -> ParsedCertificate:
    """Parse DER strictly enough to know it is a certificate; anything else → InputError."""
    try:
        cert = asn1_x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        # Force the outer structure: these raise when the bytes are no certificate at all.
        tbs["subject_public_key_info"]["algorithm"]["algorithm"].dotted  # noqa: B018
        tbs["validity"]["not_after"]  # noqa: B018
        cert["signature_algorithm"]["algorithm"].dotted  # noqa: B018
        cert["signature_value"].native  # noqa: B018
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InputError(f"{source or 'input'}: not a DER X.509 certificate ({type(exc).__name__})") from exc
    return ParsedCertificate(der, cert, source)


@dataclass
class Subject:
    """One certificate under check against one profile, with its optional issuer."""

    parsed: ParsedCertificate
    profile: ResolvedProfile
    issuer: x509.Certificate | None
    name: str
    now: datetime

    @property
    def cert(self) -> Any:
        return self.parsed.cert

    @property
    def tbs(self) -> Any:
        return self.parsed.tbs

    def extension(self, oid: str) -> tuple[bool, Any] | None:
        """(critical, Extension) of the first extension with this OID (duplicates are their own finding)."""
        for dotted, critical, ext in self.parsed.extensions:
            if dotted == oid:
                return critical, ext
        return None

    def finding(self, sev: Severity, code: str, message: str) -> Finding:
        return Finding(sev, code, message, self.name)


Check = Callable[[Subject], Iterator[Finding]]


# --- shared readers ----------------------------------------------------------------------
def _algorithm_identifier(
    identifier: Any, allowed: Sequence[str], where: str, prefix: str
) -> Iterator[tuple[str, str]]:
    """(code suffix, message) for an AlgorithmIdentifier outside ``allowed`` or with ECDSA parameters."""
    name = signature_name(identifier["algorithm"].dotted)
    if name not in allowed:
        yield f"{prefix}.algorithm", f"{where} algorithm is {name}; profile allows {', '.join(allowed)}"
    params = identifier["parameters"]
    # RFC 5758 3.2: for ecdsa-with-SHA2 the parameters field MUST be absent (not NULL).
    if name.startswith("ecdsa") and not isinstance(params, core.Void):
        kind = "NULL" if params.dump() == b"\x05\x00" else "non-empty"
        yield (
            f"{prefix}.params_not_absent",
            f"{where} AlgorithmIdentifier {name} carries {kind} parameters; RFC 5758 3.2 requires them absent",
        )


def _time_encoding(value: Any, field_name: str) -> str | None:
    """Why a Time breaks RFC 5280 4.1.2.5 (UTCTime through 2049, GeneralizedTime from 2050), or None."""
    when = value.native
    expected = "utc_time" if when.year < 2050 else "general_time"
    if value.name != expected:
        return f"{field_name} {when:%Y-%m-%d} is {value.name}; RFC 5280 4.1.2.5 requires {expected}"
    if not _TIME_FORMATS[value.name].fullmatch(bytes(value.chosen.contents)):
        return f"{field_name} {bytes(value.chosen.contents)!r} is not in the DER form of RFC 5280 4.1.2.5 (seconds, Z)"
    return None


def _verify(key: Any, signature: bytes, data: bytes, name: str) -> bool | None:
    """True/False when the signature could be verified with ``key``; None when the pair is unsupported."""
    algorithm = _HASHES.get(name)
    if algorithm is None:
        return None
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and name.startswith("ecdsa"):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and name.endswith("RSAEncryption"):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _issuer_key_identifier(issuer: x509.Certificate) -> bytes | None:
    try:
        return issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


# --- certificate checks ------------------------------------------------------------------
def check_version(s: Subject) -> Iterator[Finding]:
    # Profiles A-E: every certificate is X.509 v3 (RFC 5280 4.1.2.1; extensions need v3).
    if s.tbs["version"].native != "v3":
        yield s.finding(Severity.ERROR, "profile.version", f"version is {s.tbs['version'].native}, not v3")


def check_signature_algorithm(s: Subject) -> Iterator[Finding]:
    allowed = s.profile.rules.signature_algorithms
    outer, inner = s.cert["signature_algorithm"], s.tbs["signature"]
    for code, message in _algorithm_identifier(outer, allowed, "signatureAlgorithm", "profile.signature"):
        yield s.finding(Severity.ERROR, code, message)
    if outer.dump() != inner.dump():
        yield s.finding(
            Severity.ERROR,
            "profile.signature.mismatch",
            "tbsCertificate.signature differs from signatureAlgorithm (RFC 5280 4.1.1.2)",
        )
        for code, message in _algorithm_identifier(inner, allowed, "tbsCertificate.signature", "profile.signature"):
            yield s.finding(Severity.ERROR, code, message)


def check_key(s: Subject) -> Iterator[Finding]:
    # GBCS 12 (via RFC 5759): EC on a named curve (RFC 5480 2.1.1), uncompressed point (RFC 5480 2.2).
    facts = key_facts(s.tbs["subject_public_key_info"])
    allowed = s.profile.rules.key_algorithms
    if facts.explicit_parameters:
        yield s.finding(
            Severity.ERROR,
            "profile.key.explicit_parameters",
            "EC key does not name its curve (explicit, implicitCA or missing parameters); RFC 5480 2.1.1 requires one",
        )
        return
    if facts.algorithm not in allowed:
        code, what = (
            ("profile.key.curve", f"EC key is on {facts.curve}")
            if facts.curve
            else ("profile.key.algorithm", f"key is {facts.algorithm}")
        )
        yield s.finding(Severity.ERROR, code, f"{what}; profile allows {', '.join(allowed)}")
    if facts.curve is None:
        return
    point = s.parsed.public_key_bits
    if not facts.point_uncompressed:
        form = "compressed" if point[:1] in (b"\x02", b"\x03") else f"malformed ({len(point)} octets)"
        yield s.finding(
            Severity.ERROR,
            "profile.key.point_compressed",
            f"EC point is {form}, not the uncompressed form RFC 5480 2.2 and GBCS 12 require",
        )
        return
    curve = _CURVES.get(facts.curve)
    if curve is not None:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        except ValueError:
            yield s.finding(Severity.ERROR, "profile.key.point_invalid", f"EC point is not on {facts.curve}")


def check_serial(s: Subject) -> Iterator[Finding]:
    serial = s.tbs["serial_number"]
    if serial.native <= 0:
        yield s.finding(
            Severity.ERROR, "profile.serial.not_positive", "serial number is not positive (RFC 5280 4.1.2.2)"
        )
    octets = len(serial.contents)
    wanted = s.profile.rules.serial_octets
    if octets != wanted:
        yield s.finding(
            severity(s.profile.rules.serial_octets_on_violation),
            "profile.serial.length",
            f"serial number is {octets} octets; profile requires {wanted}",
        )


def check_validity(s: Subject) -> Iterator[Finding]:
    rule = s.profile.rules.validity
    validity = s.tbs["validity"]
    for field_name in ("not_before", "not_after"):
        problem = _time_encoding(validity[field_name], field_name)
        if problem:
            yield s.finding(Severity.ERROR, "profile.validity.time_encoding", problem)
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    sev = severity(rule.on_violation)
    if rule.fixed_not_after:
        wanted = datetime.strptime(rule.fixed_not_after, _FIXED_TIME).replace(tzinfo=timezone.utc)
        if not_after != wanted:
            yield s.finding(
                sev,
                "profile.validity.not_after",
                f"notAfter is {not_after:%Y%m%d%H%M%S}Z; profile requires {rule.fixed_not_after} (GBCS 12.2)",
            )
    # RFC 5280 4.1.2.5: the period includes notAfter, so N days end one second before notBefore + N.
    elif rule.max_days is not None and not_after - not_before >= timedelta(days=rule.max_days):
        yield s.finding(
            sev,
            "profile.validity.too_long",
            f"validity is {(not_after - not_before).days + 1} days; profile allows {rule.max_days}",
        )
    if not_after < not_before:
        yield s.finding(Severity.ERROR, "profile.validity.negative", "notAfter is before notBefore")
    if s.issuer is not None and rule.within_issuer and not_after > s.issuer.not_valid_after_utc:
        yield s.finding(
            sev, "profile.validity.beyond_issuer", f"notAfter {not_after:%Y-%m-%d} is after the issuer's notAfter"
        )
    if not_after < s.now:
        # Expiry says nothing about shape (PROVENANCE.md): a notice, and the only use of the clock.
        yield s.finding(Severity.NOTICE, "profile.expired", f"expired {not_after:%Y-%m-%d}")


def _attribute_value(oid: str, value: Any) -> tuple[str | None, str]:
    """(encoding name, printable value) of a name attribute value, read from its raw tag."""
    raw = value.dump()
    tag = raw[0] & 0x1F
    if oid == X500_UNIQUE_IDENTIFIER_OID:
        return ("bitString" if tag == 3 else None), bytes(value.contents or b"").hex().upper()
    parsed = core.load(raw)
    return _STRING_TYPES.get(tag), str(parsed.native)


def check_subject(s: Subject) -> Iterator[Finding]:
    rule = s.profile.rules.subject
    rdns = list(s.tbs["subject"].chosen)
    if rule.form == "empty":
        if rdns:
            yield s.finding(
                Severity.ERROR,
                "profile.subject.not_empty",
                "subject must be empty (GBCS 12.2 device certificate); identity is in the SAN",
            )
        return
    seen: list[str] = []
    for rdn in rdns:
        if len(rdn) != 1:
            yield s.finding(Severity.ERROR, "profile.subject.multi_valued_rdn", "a subject RDN has several attributes")
        for atv in rdn:
            oid = atv["type"].dotted
            short = _ATTRIBUTES.get(oid, oid)
            spec = next((a for a in rule.attributes if a.type == short), None)
            if spec is None:
                yield s.finding(
                    Severity.ERROR,
                    "profile.subject.attribute_unexpected",
                    f"subject attribute {short} is not in the profile",
                )
                continue
            if short in seen:
                yield s.finding(Severity.ERROR, "profile.subject.attribute_repeated", f"subject has {short} twice")
            seen.append(short)
            encoding, text = _attribute_value(oid, atv["value"])
            if short == "x500UniqueIdentifier":
                # SMKI: a BIT STRING of exactly 64 bits (unused-bits octet 00 + 8 octets) = the EUI-64.
                if encoding != "bitString" or len(text) != 18 or not text.startswith("00"):
                    yield s.finding(
                        Severity.ERROR,
                        "profile.subject.eui64_length",
                        "x500UniqueIdentifier must be a BIT STRING of 64 bits (the EUI-64)",
                    )
                continue
            if encoding not in spec.encodings:
                yield s.finding(
                    Severity.ERROR,
                    "profile.subject.encoding",
                    f"{short} is {encoding or 'another string type'}; profile allows {', '.join(spec.encodings)}",
                )
            if spec.source == "role" and text not in rule.roles:
                yield s.finding(
                    Severity.ERROR,
                    "profile.subject.role_unknown",
                    f"OU {text[:20]!r} is not an allowed RemotePartyRole code ({', '.join(rule.roles)})",
                )
    for spec in rule.attributes:
        if spec.required and spec.type not in seen:
            yield s.finding(Severity.ERROR, "profile.subject.attribute_missing", f"subject has no {spec.type}")
    order = [a.type for a in rule.attributes if a.type in seen]
    if rule.order == "as-listed" and list(dict.fromkeys(seen)) != order:
        yield s.finding(
            Severity.ERROR,
            "profile.subject.order",
            f"subject order is {', '.join(seen)}; profile requires {', '.join(order)}",
        )
    if s.profile.rules.kind == "root-ca" and s.tbs["issuer"].dump() != s.tbs["subject"].dump():
        yield s.finding(Severity.ERROR, "profile.issuer.not_self_issued", "a root's issuer must equal its subject")


def check_extension_presence(s: Subject) -> Iterator[Finding]:
    rules = s.profile.rules.extensions
    present: dict[str, bool] = {}
    for oid, critical, _ in s.parsed.extensions:
        if oid in present:
            yield s.finding(
                Severity.ERROR, "profile.extension.duplicate", f"extension {oid} appears twice (RFC 5280 4.2)"
            )
            continue
        present[oid] = critical
        if oid not in EXTENSIONS and rules.others == "forbidden":
            yield s.finding(
                Severity.ERROR,
                "profile.extension.unexpected",
                f"extension {oid}{' (critical)' if critical else ''} is not in the profile",
            )
    for oid, (attr, code) in EXTENSIONS.items():
        rule: ExtensionRule = getattr(rules, attr)
        sev = severity(rule.on_violation)
        if oid not in present:
            if rule.presence == "required":
                yield s.finding(sev, f"profile.{code}.missing", f"{attr} is required but absent")
            continue
        if rule.presence == "absent":
            yield s.finding(sev, f"profile.{code}.present", f"{attr} must be absent")
        elif rule.critical is not None and present[oid] != rule.critical:
            state = "critical" if rule.critical else "non-critical"
            yield s.finding(
                sev, f"profile.{code}.{'not_critical' if rule.critical else 'critical'}", f"{attr} must be {state}"
            )


def check_basic_constraints(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.19")
    rule = s.profile.rules.extensions.basic_constraints
    if found is None:
        return
    value = found[1]["extn_value"].parsed.native
    if value["ca"] and not s.profile.rules.is_ca:
        # RFC 5280 4.2.1.9: cA asserts a CA key; never on an end entity, whatever the presence rule.
        yield s.finding(Severity.ERROR, "profile.basic_constraints.ca_on_end_entity", "cA is TRUE on an end entity")
    if rule.presence == "absent":
        return  # check_extension_presence reports the extension itself
    if rule.presence == "optional" and not value["ca"]:
        yield s.finding(
            Severity.INFO,
            "profile.basic_constraints.present",
            "basicConstraints cA=FALSE is present (allowed: both forms exist in SMKI)",
        )
    if rule.ca and not value["ca"]:
        yield s.finding(Severity.ERROR, "profile.basic_constraints.not_ca", "cA is FALSE on a CA certificate")
    if rule.ca and value["path_len_constraint"] != rule.path_length:
        yield s.finding(
            Severity.ERROR,
            "profile.basic_constraints.path_length",
            f"pathLenConstraint is {value['path_len_constraint']}; profile requires {rule.path_length}",
        )


def check_key_usage(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.15")
    rule = s.profile.rules.extensions.key_usage
    if found is None or rule.presence == "absent":
        return
    bits = set(found[1]["extn_value"].parsed.native)
    if rule.bits:
        wanted = {_KU_NAMES[b] for b in rule.bits}
        if bits != wanted:
            yield s.finding(
                Severity.ERROR,
                "profile.key_usage.bits",
                f"keyUsage is {', '.join(sorted(bits)) or 'empty'}; profile requires {', '.join(sorted(wanted))}",
            )
    elif rule.one_of:
        # GBCS 12.2 / SMKI: exactly one of digitalSignature or keyAgreement per certificate.
        allowed = {_KU_NAMES[b] for b in rule.one_of}
        if len(bits) != 1:
            yield s.finding(
                Severity.ERROR,
                "profile.key_usage.bit_count",
                f"keyUsage has {len(bits)} bits ({', '.join(sorted(bits))}); exactly one of "
                f"{', '.join(rule.one_of)} is required",
            )
        elif not bits <= allowed:
            yield s.finding(
                Severity.ERROR,
                "profile.key_usage.bits",
                f"keyUsage is {', '.join(bits)}; profile allows one of {', '.join(rule.one_of)}",
            )


def check_subject_key_identifier(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.14")
    rule = s.profile.rules.extensions.subject_key_identifier
    if found is None or rule.presence == "absent" or rule.method != "rfc5280-method2-8":
        return
    value = bytes(found[1]["extn_value"].parsed.native)
    # GBCS 12: RFC 5280 4.2.1.2 method 2, 0100 + low 60 bits of SHA-1(subjectPublicKey), 8 octets.
    if len(value) != 8:
        yield s.finding(Severity.ERROR, "profile.ski.length", f"subjectKeyIdentifier is {len(value)} octets, not 8")
    elif value != gbcs_key_identifier(s.parsed.public_key_bits):
        yield s.finding(
            Severity.ERROR,
            "profile.ski.not_method2",
            "subjectKeyIdentifier is not RFC 5280 4.2.1.2 method 2 (GBCS 12: 0x4 + low 60 bits of SHA-1)",
        )


def check_authority_key_identifier(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.35")
    rule = s.profile.rules.extensions.authority_key_identifier
    if found is None or rule.presence == "absent":
        return
    value = found[1]["extn_value"].parsed.native
    # GBCS 12: the [0] keyIdentifier form only.
    if (
        value["authority_cert_issuer"] is not None
        or value["authority_cert_serial_number"] is not None
        or value["key_identifier"] is None
    ):
        yield s.finding(Severity.ERROR, "profile.aki.form", "authorityKeyIdentifier must hold only [0] keyIdentifier")
    key_id = value["key_identifier"] or b""
    if rule.method == "rfc5280-method2-8" and key_id and len(key_id) != 8:
        yield s.finding(Severity.ERROR, "profile.aki.length", f"authorityKeyIdentifier is {len(key_id)} octets, not 8")
    if s.issuer is not None:
        issuer_ski = _issuer_key_identifier(s.issuer)
        if issuer_ski != key_id:
            yield s.finding(
                Severity.ERROR,
                "profile.aki.mismatch",
                "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier"
                + ("" if issuer_ski is not None else " (the issuer has none)"),
            )


def check_policies(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.32")
    rule = s.profile.rules.extensions.certificate_policies
    if found is None or rule.presence == "absent":
        return
    oids = [p["policy_identifier"].dotted for p in found[1]["extn_value"].parsed]
    # GBCS 12.2: one policyIdentifier, the OID of the environment the certificate was issued in.
    if len(oids) != 1:
        yield s.finding(
            Severity.ERROR,
            "profile.policies.count",
            f"certificatePolicies has {len(oids)} policies; exactly one is required",
        )
    wanted = s.profile.policy_oids
    if not set(oids) & set(wanted):
        yield s.finding(
            Severity.ERROR,
            "profile.policies.oid",
            f"policy {', '.join(oids) or '(none)'} is not the environment's ({', '.join(wanted)})",
        )


def _other_name_value(another_name: Any) -> bytes:
    raw = bytes(another_name["value"].dump())
    class_, _, tag, _, contents, _ = parser.parse(raw)
    # value is [0] EXPLICIT ANY (RFC 5280 4.2.1.6): unwrap the explicit tag.
    return bytes(contents) if class_ == 2 and tag == 0 else raw


def check_subject_alt_name(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.17")
    rule = s.profile.rules.extensions.subject_alt_name
    if found is None or rule.presence == "absent":
        return
    names = list(found[1]["extn_value"].parsed)
    hardware = [
        n.chosen for n in names if n.name == "other_name" and n.chosen["type_id"].dotted == HARDWARE_MODULE_NAME_OID
    ]
    if len(names) != 1 or len(hardware) != 1:
        yield s.finding(
            Severity.ERROR,
            "profile.san.form",
            f"subjectAltName holds {len(names)} names, {len(hardware)} hardwareModuleName; "
            "GBCS 12.2 requires exactly one otherName hardwareModuleName (RFC 4108)",
        )
    if not hardware:
        return
    hw_type, serial = parse_hardware_module_name(_other_name_value(hardware[0]))
    if s.profile.hw_type_oid and hw_type != s.profile.hw_type_oid:
        yield s.finding(
            Severity.ERROR, "profile.san.hw_type", f"hwType is {hw_type}; profile requires {s.profile.hw_type_oid}"
        )
    if len(serial) != rule.serial_octets:
        yield s.finding(
            Severity.ERROR,
            "profile.san.eui64_length",
            f"hwSerialNum is {len(serial)} octets; the EUI-64 is {rule.serial_octets}",
        )


def check_signature(s: Subject) -> Iterator[Finding]:
    # Only with an issuer (a root passes itself): issuance lints a copy signed by a throwaway key.
    if s.issuer is None:
        return
    key: Any = s.issuer.public_key()
    issuer_name = s.issuer.subject.public_bytes()
    name = signature_name(s.cert["signature_algorithm"]["algorithm"].dotted)
    verified = _verify(key, bytes(s.cert["signature_value"].native), s.tbs.dump(), name)
    if verified is False:
        yield s.finding(
            Severity.ERROR, "profile.signature.invalid", f"{name} signature does not verify with the issuer's key"
        )
    if s.tbs["issuer"].dump() != issuer_name:
        yield s.finding(
            Severity.ERROR, "profile.issuer.name_mismatch", "issuer name differs from the issuer's subject (bytes)"
        )


CHECKS: tuple[Check, ...] = (
    check_version,
    check_signature_algorithm,
    check_key,
    check_serial,
    check_validity,
    check_subject,
    check_extension_presence,
    check_basic_constraints,
    check_key_usage,
    check_subject_key_identifier,
    check_authority_key_identifier,
    check_policies,
    check_subject_alt_name,
    check_signature,
)


def check_parsed(
    parsed: ParsedCertificate,
    profile: ResolvedProfile,
    *,
    issuer: x509.Certificate | None = None,
    subject: str = "",
    now: datetime | None = None,
) -> list[Finding]:
    """Every profile check on an already parsed certificate; a crashing check becomes a FATAL finding."""
    return [f for _, found in check_each(parsed, profile, issuer=issuer, subject=subject, now=now) for f in found]


def check_each(
    parsed: ParsedCertificate,
    profile: ResolvedProfile,
    *,
    issuer: x509.Certificate | None = None,
    subject: str = "",
    now: datetime | None = None,
) -> list[tuple[Check, list[Finding]]]:
    """Each check with its findings, in check order (what ``check_parsed`` concatenates)."""
    s = Subject(parsed, profile, issuer, subject, now or current().now())
    out: list[tuple[Check, list[Finding]]] = []
    for check in CHECKS:
        found: list[Finding] = []
        try:
            found.extend(check(s))  # what a check yielded before it crashed stays
        except Exception as exc:  # noqa: BLE001 - a crashing check is a finding, never silence
            crashed = f"{getattr(check, '__name__', repr(check))} could not decide: {type(exc).__name__}: {exc}"
            found.append(s.finding(Severity.FATAL, "profile.check_crashed", crashed[:300]))
        out.append((check, found))
    return out


def check_certificate(
    der: bytes,
    profile: ResolvedProfile,
    *,
    issuer: x509.Certificate | None = None,
    subject: str = "",
    now: datetime | None = None,
) -> list[Finding]:
    """Check one DER certificate against a profile.

    Args:
        der: the certificate, DER; parsed with asn1crypto so raw encodings stay visible.
        profile: the resolved profile to check against.
        issuer: the issuing CA certificate; enables signature, issuer-name and AKI-match checks.
        subject: how findings name the certificate (a path, a serial).
        now: the clock for the expiry NOTICE only (shape checks never read it).

    Returns:
        The findings, in check order; a check that crashed appears as FATAL ``profile.check_crashed``.

    Raises:
        InputError: the bytes are no X.509 certificate at all.
    """
    return check_parsed(parse_certificate(der, subject), profile, issuer=issuer, subject=subject, now=now)


# --- CRLs (DOMAIN.md profile E, minimal) ------------------------------------------------
@dataclass
class _CRLSubject:
    crl: Any
    issuer: x509.Certificate | None
    algorithms: Sequence[str]
    name: str

    @property
    def tbs(self) -> Any:
        return self.crl["tbs_cert_list"]

    def finding(self, code: str, message: str, sev: Severity = Severity.ERROR) -> Finding:
        return Finding(sev, code, message, self.name)


def _crl_structure(c: _CRLSubject) -> Iterator[Finding]:
    if c.tbs["version"].native != "v2":
        yield c.finding("crl.version", f"CRL is {c.tbs['version'].native}, not v2 (profile E; RFC 5280 5.1.2.1)")
    outer, inner = c.crl["signature_algorithm"], c.tbs["signature"]
    for code, message in _algorithm_identifier(outer, c.algorithms, "CRL signatureAlgorithm", "crl.signature"):
        yield c.finding(code, message)
    if outer.dump() != inner.dump():
        yield c.finding(
            "crl.signature.mismatch", "tbsCertList.signature differs from signatureAlgorithm (RFC 5280 5.1.1.2)"
        )


def _crl_times(c: _CRLSubject) -> Iterator[Finding]:
    this_update, next_update = c.tbs["this_update"], c.tbs["next_update"]
    for value, field_name in ((this_update, "thisUpdate"), (next_update, "nextUpdate")):
        if not isinstance(value, core.Void):
            problem = _time_encoding(value, field_name)
            if problem:
                yield c.finding("crl.time_encoding", problem.replace("4.1.2.5", "5.1.2.4"))
    if isinstance(next_update, core.Void):
        # RFC 5280 5.1.2.5: conforming CRL issuers MUST include nextUpdate.
        yield c.finding("crl.next_update.missing", "nextUpdate is absent (RFC 5280 5.1.2.5)")
    elif next_update.native <= this_update.native:
        yield c.finding("crl.next_update.not_after_this_update", "nextUpdate is not after thisUpdate")


def _crl_extensions(c: _CRLSubject) -> Iterator[Finding]:
    seen: dict[str, Any] = {}
    for ext in c.tbs["crl_extensions"]:
        oid = ext["extn_id"].dotted
        if oid in seen:
            yield c.finding("crl.extension.duplicate", f"CRL extension {oid} appears twice (RFC 5280 5.2)")
        seen.setdefault(oid, ext)
    number = seen.get("2.5.29.20")
    if number is None:
        yield c.finding("crl.number.missing", "cRLNumber is absent (RFC 5280 5.2.3; profile E)")
    elif number["critical"].native:
        yield c.finding("crl.number.critical", "cRLNumber must be non-critical (RFC 5280 5.2.3)")
    aki = seen.get("2.5.29.35")
    if aki is None:
        yield c.finding("crl.aki.missing", "authorityKeyIdentifier is absent (RFC 5280 5.2.1; profile E)")
        return
    value = aki["extn_value"].parsed.native
    if value["key_identifier"] is None or value["authority_cert_issuer"] is not None:
        yield c.finding("crl.aki.form", "authorityKeyIdentifier must hold [0] keyIdentifier (GBCS 12)")
    if c.issuer is not None and _issuer_key_identifier(c.issuer) != value["key_identifier"]:
        yield c.finding("crl.aki.mismatch", "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier")


def _crl_signature(c: _CRLSubject) -> Iterator[Finding]:
    if c.issuer is None:
        return
    name = signature_name(c.crl["signature_algorithm"]["algorithm"].dotted)
    if _verify(c.issuer.public_key(), bytes(c.crl["signature"].native), c.tbs.dump(), name) is False:
        yield c.finding("crl.signature.invalid", f"{name} signature does not verify with the issuer's key")
    # Profile E: the CRL issuer is byte-identical to the CA's subject.
    if c.tbs["issuer"].dump() != c.issuer.subject.public_bytes():
        yield c.finding("crl.issuer.name_mismatch", "CRL issuer differs from the CA's subject (bytes)")


CRL_CHECKS: tuple[Callable[[_CRLSubject], Iterator[Finding]], ...] = (
    _crl_structure,
    _crl_times,
    _crl_extensions,
    _crl_signature,
)


def check_crl(
    der: bytes,
    *,
    issuer: x509.Certificate | None = None,
    subject: str = "",
    signature_algorithms: Sequence[str] | None = None,
) -> list[Finding]:
    """Check one DER CRL against DOMAIN.md profile E (minimal).

    v2; signature in ``signature_algorithms`` (default ecdsa-with-SHA256) with absent ECDSA
    parameters; RFC 5280 times; nextUpdate present and later; cRLNumber (non-critical) and an
    AKI keyIdentifier present. With ``issuer``: signature, issuer name and AKI match.

    Raises:
        InputError: the bytes are no X.509 CRL at all.
    """
    try:
        crl = asn1_crl.CertificateList.load(der, strict=True)
        crl["tbs_cert_list"]["this_update"].native  # noqa: B018 - forces the parse
        crl["signature_algorithm"]["algorithm"].dotted  # noqa: B018
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InputError(f"{subject or 'input'}: not a DER X.509 CRL ({type(exc).__name__})") from exc
    c = _CRLSubject(crl, issuer, signature_algorithms or ["ecdsa-with-SHA256"], subject)
    findings: list[Finding] = []
    for check in CRL_CHECKS:
        try:
            findings.extend(check(c))
        except Exception as exc:  # noqa: BLE001 - a crashing check is a finding
            findings.append(
                c.finding(
                    "crl.check_crashed",
                    f"{check.__name__} could not decide: {type(exc).__name__}: {exc}"[:300],
                    Severity.FATAL,
                )
            )
    return findings


def is_crl(der: bytes) -> bool:
    """Whether the DER is shaped like a CertificateList (used to route DER files in lint)."""
    try:
        asn1_crl.CertificateList.load(der, strict=True)["tbs_cert_list"]["this_update"].native  # noqa: B018
    except (ValueError, TypeError, KeyError, OverflowError):
        return False
    return True
