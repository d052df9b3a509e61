"""Certificate profile checks over the raw DER (asn1crypto): findings, never exceptions.

cryptography hides encodings (NULL signature parameters, explicit curves, time types) and
refuses some real certificates, so every check reads the ASN.1 itself. Each check is a small
function; a check that crashes yields a FATAL finding naming it (pkilint's habit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from asn1crypto import core, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ceremony.checks.findings import Finding, Severity
from ceremony.der import (
    HARDWARE_MODULE_NAME_OID,
    X500_UNIQUE_IDENTIFIER_OID,
    gbcs_key_identifier,
    key_facts,
    parse_hardware_module_name,
    signature_name,
)
from ceremony.errors import InputError
from ceremony.profiles import ExtensionRule, ResolvedProfile, Violation

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "ecdsa-with-SHA256": hashes.SHA256(),
    "ecdsa-with-SHA384": hashes.SHA384(),
    "ecdsa-with-SHA512": hashes.SHA512(),
    "sha256WithRSAEncryption": hashes.SHA256(),
}
#: Extension OIDs the profiles speak about → (rule attribute, short code).
_EXTENSIONS = {
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
SENTINEL = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def severity(on_violation: Violation) -> Severity:
    return Severity.WARNING if on_violation == "warning" else Severity.ERROR


@dataclass
class Subject:
    """One certificate under check: its parsed DER, profile and optional issuer."""

    der: bytes
    cert: asn1_x509.Certificate
    profile: ResolvedProfile
    issuer: x509.Certificate | None
    name: str
    now: datetime

    @property
    def tbs(self) -> Any:
        return self.cert["tbs_certificate"]

    def extensions(self) -> list[tuple[str, bool, Any]]:
        return [(e["extn_id"].dotted, bool(e["critical"].native), e) for e in self.tbs["extensions"]]

    def extension(self, oid: str) -> tuple[bool, Any] | None:
        found = [(critical, ext) for dotted, critical, ext in self.extensions() if dotted == oid]
        return found[0] if found else None

    def finding(self, sev: Severity, code: str, message: str) -> Finding:
        return Finding(sev, code, message, self.name)


Check = Callable[[Subject], Iterator[Finding]]


def load_certificate(der: bytes, source: str) -> asn1_x509.Certificate:
    """Parse DER strictly enough to know it is a certificate; anything else → InputError."""
    try:
        cert = asn1_x509.Certificate.load(der, strict=True)
        cert["tbs_certificate"]["subject_public_key_info"]  # noqa: B018 - forces the parse
        cert["signature_algorithm"]["algorithm"].dotted  # noqa: B018
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{source}: not a DER X.509 certificate") from exc
    return cert


# --- checks -----------------------------------------------------------------------------
def check_version(s: Subject) -> Iterator[Finding]:
    if s.tbs["version"].native != "v3":
        yield s.finding(Severity.ERROR, "profile.version", f"version is {s.tbs['version'].native}, not v3")


def _signature_identifier(s: Subject, identifier: Any, where: str) -> Iterator[Finding]:
    oid = identifier["algorithm"].dotted
    name = signature_name(oid)
    if name not in s.profile.rules.signature_algorithms:
        yield s.finding(
            Severity.ERROR,
            "profile.signature.algorithm",
            f"{where} algorithm is {name}; profile allows {', '.join(s.profile.rules.signature_algorithms)}",
        )
    params = identifier["parameters"]
    if name.startswith("ecdsa") and not isinstance(params, core.Void):
        kind = "NULL" if params.dump() == b"\x05\x00" else "non-empty"
        yield s.finding(
            Severity.ERROR,
            "profile.signature.params_not_absent",
            f"{where} AlgorithmIdentifier {name} carries {kind} parameters; RFC 5758 3.2 requires them absent",
        )


def check_signature_algorithm(s: Subject) -> Iterator[Finding]:
    yield from _signature_identifier(s, s.cert["signature_algorithm"], "signatureAlgorithm")
    if s.cert["signature_algorithm"].dump() != s.tbs["signature"].dump():
        yield s.finding(
            Severity.ERROR,
            "profile.signature.mismatch",
            "tbsCertificate.signature differs from signatureAlgorithm (RFC 5280 4.1.1.2)",
        )
    else:
        # Same bytes: report the parameter defect once, from the outer identifier.
        yield from (
            f
            for f in _signature_identifier(s, s.tbs["signature"], "tbsCertificate.signature")
            if f.code != "profile.signature.params_not_absent"
        )


def check_key(s: Subject) -> Iterator[Finding]:
    facts = key_facts(s.tbs["subject_public_key_info"])
    allowed = s.profile.rules.key_algorithms
    if facts.explicit_parameters:
        yield s.finding(
            Severity.ERROR,
            "profile.key.explicit_parameters",
            "EC key does not name its curve (explicit, implicit or missing parameters); RFC 5480 requires one",
        )
        return
    if facts.algorithm not in allowed:
        code, what = (
            ("profile.key.curve", f"EC key is on {facts.curve}")
            if facts.curve
            else ("profile.key.algorithm", f"key is {facts.algorithm}")
        )
        yield s.finding(Severity.ERROR, code, f"{what}; profile allows {', '.join(allowed)}")
    if not facts.point_uncompressed:
        yield s.finding(
            Severity.ERROR,
            "profile.key.point_compressed",
            "EC point is not in uncompressed form (RFC 5480 2.2, GBCS 12)",
        )


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
    times = {}
    for field in ("not_before", "not_after"):
        value = validity[field]
        when = value.native
        times[field] = when
        expected = "utc_time" if when.year < 2050 else "general_time"
        if value.name != expected:
            yield s.finding(
                Severity.ERROR,
                "profile.validity.time_encoding",
                f"{field} {when:%Y-%m-%d} is {value.name}; RFC 5280 4.1.2.5 requires {expected}",
            )
    not_before, not_after = times["not_before"], times["not_after"]
    sev = severity(rule.on_violation)
    if rule.fixed_not_after:
        if not_after != SENTINEL:
            yield s.finding(
                sev,
                "profile.validity.not_after",
                f"notAfter is {not_after:%Y%m%d%H%M%SZ}; profile requires {rule.fixed_not_after}",
            )
    elif rule.max_days is not None and not_after - not_before >= timedelta(days=rule.max_days):
        yield s.finding(
            sev,
            "profile.validity.too_long",
            f"validity is {(not_after - not_before).days} days; profile allows {rule.max_days}",
        )
    if not_after < not_before:
        yield s.finding(Severity.ERROR, "profile.validity.negative", "notAfter is before notBefore")
    if s.issuer is not None and rule.within_issuer and not_after > s.issuer.not_valid_after_utc:
        yield s.finding(
            sev, "profile.validity.beyond_issuer", f"notAfter {not_after:%Y-%m-%d} is after the issuer's notAfter"
        )
    if not_after < s.now:
        # Expiry says nothing about shape: a notice only.
        yield s.finding(Severity.NOTICE, "profile.validity.expired", f"expired {not_after:%Y-%m-%d}")


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
            seen.append(short)
            encoding, text = _attribute_value(oid, atv["value"])
            if short == "x500UniqueIdentifier":
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
            if spec.source == "role":
                if len(text) != 2 or text.upper() not in rule.roles:
                    yield s.finding(
                        Severity.ERROR,
                        "profile.subject.role_unknown",
                        f"OU {text[:20]!r} is not an allowed RemotePartyRole code ({', '.join(rule.roles)})",
                    )
    for spec in rule.attributes:
        if spec.required and spec.type not in seen:
            yield s.finding(Severity.ERROR, "profile.subject.attribute_missing", f"subject has no {spec.type}")
    order = [a.type for a in rule.attributes if a.type in seen]
    if rule.order == "as-listed" and seen != order:
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
    for oid, critical, _ in s.extensions():
        if oid in present:
            yield s.finding(
                Severity.ERROR, "profile.extension.duplicate", f"extension {oid} appears twice (RFC 5280 4.2)"
            )
        present[oid] = critical
        if oid not in _EXTENSIONS and rules.others == "forbidden":
            yield s.finding(Severity.ERROR, "profile.extension.unexpected", f"extension {oid} is not in the profile")
    for oid, (attr, code) in _EXTENSIONS.items():
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
    if rule.presence == "optional" and not value["ca"]:
        yield s.finding(
            Severity.INFO,
            "profile.basic_constraints.present",
            "basicConstraints cA=FALSE is present (allowed: both forms exist in SMKI)",
        )
    if value["ca"] and not s.profile.rules.is_ca:
        yield s.finding(Severity.ERROR, "profile.basic_constraints.ca_on_end_entity", "cA is TRUE on an end entity")
    elif rule.ca and not value["ca"]:
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
    if found is None:
        return
    bits = set(found[1]["extn_value"].parsed.native)
    if rule.bits:
        wanted = {_KU_NAMES[b] for b in rule.bits}
        if bits != wanted:
            yield s.finding(
                Severity.ERROR,
                "profile.key_usage.bits",
                f"keyUsage is {', '.join(sorted(bits))}; profile requires {', '.join(sorted(wanted))}",
            )
    elif rule.one_of:
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


def check_key_identifiers(s: Subject) -> Iterator[Finding]:
    ski = s.extension("2.5.29.14")
    bits = bytes(s.tbs["subject_public_key_info"]["public_key"].contents[1:])
    if ski is not None:
        value = bytes(ski[1]["extn_value"].parsed.native)
        if len(value) != 8:
            yield s.finding(Severity.ERROR, "profile.ski.length", f"subjectKeyIdentifier is {len(value)} octets, not 8")
        elif (
            s.profile.rules.extensions.subject_key_identifier.method == "rfc5280-method2-8"
            and value != gbcs_key_identifier(bits)
        ):
            yield s.finding(
                Severity.ERROR,
                "profile.ski.not_method2",
                "subjectKeyIdentifier is not RFC 5280 4.2.1.2 method 2 (GBCS 12: 0x4 + low 60 bits of SHA-1)",
            )
    aki = s.extension("2.5.29.35")
    if aki is None:
        return
    value = aki[1]["extn_value"].parsed.native
    if (
        value["authority_cert_issuer"] is not None
        or value["authority_cert_serial_number"] is not None
        or value["key_identifier"] is None
    ):
        yield s.finding(Severity.ERROR, "profile.aki.form", "authorityKeyIdentifier must hold only [0] keyIdentifier")
    key_id = value["key_identifier"] or b""
    if len(key_id) != 8:
        yield s.finding(Severity.ERROR, "profile.aki.length", f"authorityKeyIdentifier is {len(key_id)} octets, not 8")
    if s.issuer is not None:
        try:
            issuer_ski = s.issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            issuer_ski = None
        if issuer_ski != key_id:
            yield s.finding(
                Severity.ERROR, "profile.aki.mismatch", "authorityKeyIdentifier differs from the issuer's SKI"
            )


def check_policies(s: Subject) -> Iterator[Finding]:
    found = s.extension("2.5.29.32")
    if found is None:
        return
    oids = [p["policy_identifier"].dotted for p in found[1]["extn_value"].parsed]
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
            f"policy {', '.join(oids)} is not the environment's ({', '.join(wanted)})",
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
            "subjectAltName must hold exactly one otherName hardwareModuleName (GBCS 12.2)",
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
    if s.issuer is None:
        return
    name = signature_name(s.cert["signature_algorithm"]["algorithm"].dotted)
    algorithm = _HASHES.get(name)
    if algorithm is None:
        return  # reported by check_signature_algorithm
    key = s.issuer.public_key()
    tbs = s.tbs.dump()
    signature = bytes(s.cert["signature_value"].native)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, tbs, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, tbs, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        yield s.finding(Severity.ERROR, "profile.signature.invalid", "signature does not verify with the issuer's key")
    if s.tbs["issuer"].dump() != s.issuer.subject.public_bytes():
        yield s.finding(Severity.ERROR, "profile.issuer.name_mismatch", "issuer name differs from the issuer's subject")


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
    check_key_identifiers,
    check_policies,
    check_subject_alt_name,
    check_signature,
)


def check_certificate(
    der: bytes,
    profile: ResolvedProfile,
    *,
    issuer: x509.Certificate | None = None,
    subject: str = "",
    now: datetime | None = None,
) -> list[Finding]:
    """Every profile check on one certificate; a crashing check becomes a FATAL finding."""
    cert = load_certificate(der, subject or "certificate")
    s = Subject(der, cert, profile, issuer, subject, now or datetime.now(timezone.utc))
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(s))
        except Exception as exc:  # noqa: BLE001 - a crashing check is a finding, never silence
            findings.append(
                s.finding(
                    Severity.FATAL,
                    "profile.check_crashed",
                    f"{check.__name__} could not decide: {type(exc).__name__}: {exc}"[:200],
                )
            )
    return findings
