"""CSR intake: raw encoding checks (asn1crypto), proof of possession, and the identity a CSR asks for.

cryptography silently normalises some encodings (explicit curve parameters, NULL signature
parameters, the NEW CERTIFICATE REQUEST label), so the checks that must see the encoding run
on the DER itself before cryptography verifies the signature.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import core, pem
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.der import (
    HARDWARE_MODULE_NAME_OID,
    NAMED_CURVES,
    X500_UNIQUE_IDENTIFIER_OID,
    key_facts,
    parse_hardware_module_name,
    signature_name,
)
from ceremony.errors import InputError
from ceremony.profiles import ResolvedProfile
from ceremony.signers import CAPublicKey

MAX_CSR_BYTES = 1 << 20
PEM_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
#: Curves by the name asn1crypto gives them → the workbench's key algorithm names.
_EUI64 = re.compile(r"^[0-9A-F]{16}$")


@dataclass(frozen=True)
class RequestedIdentity:
    """What the CSR itself asks for; the approved request decides."""

    eui64: str | None = None
    role: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CertificationRequest:
    """A parsed CSR whose encoding, key and proof of possession have been checked."""

    der: bytes
    public_key: CAPublicKey
    key_algorithm: str
    signature_algorithm: str
    requested: RequestedIdentity
    sha256: str
    source: str


def normalise_eui64(text: str) -> str:
    """16 hex digits (separators '-', ':' and spaces allowed), uppercased."""
    value = re.sub(r"[-: ]", "", text).upper()
    if not _EUI64.match(value):
        raise InputError(f"EUI-64 must be 16 hex digits (got {text[:40]!r})")
    return value


def normalise_role(text: str) -> str:
    """A RemotePartyRole code as two uppercase hex digits."""
    if not re.match(r"^[0-9A-Fa-f]{1,2}$", text):
        raise InputError(f"role must be one or two hex digits (got {text[:20]!r})")
    return text.upper().rjust(2, "0")


def read_csr(path: Path) -> bytes:
    """The file's bytes; the size limit is checked before reading."""
    try:
        size = path.stat().st_size
        if size > MAX_CSR_BYTES:
            raise InputError(f"{path}: CSR file is {size} bytes; the limit is {MAX_CSR_BYTES} (1 MiB)")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read CSR ({exc.strerror})") from exc


def _der(data: bytes, source: str) -> bytes:
    if not data.strip():
        raise InputError(f"{source}: CSR is empty")
    if len(data) > MAX_CSR_BYTES:
        raise InputError(f"{source}: CSR is {len(data)} bytes; the limit is {MAX_CSR_BYTES} (1 MiB)")
    if data.lstrip()[:11] == b"-----BEGIN ":
        try:
            blocks = list(pem.unarmor(data.strip(), multiple=True))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{source}: malformed PEM ({exc})"[:200]) from exc
        if len(blocks) != 1:
            raise InputError(f"{source}: expected one PEM block, found {len(blocks)}")
        label, _, der = blocks[0]
        if label not in PEM_LABELS:
            raise InputError(f"{source}: PEM label is {label[:40]!r}; expected CERTIFICATE REQUEST")
        return bytes(der)
    return data


def _parse(der: bytes, source: str) -> asn1_csr.CertificationRequest:
    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        info = request["certification_request_info"]
        # Touch every part once so a truncated or malformed structure fails here, not later.
        info["subject"].native, info["subject_pk_info"]["algorithm"].native
        info["attributes"].native, request["signature_algorithm"].native, request["signature"].native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise InputError(f"{source}: not a DER-encoded PKCS#10 CSR (truncated or malformed)") from exc
    if info["version"].native != "v1":
        raise InputError(f"{source}: CSR version is {info['version'].native}; PKCS#10 (RFC 2986) defines only v1")
    return request


def _key_algorithm(request: asn1_csr.CertificationRequest, source: str) -> str:
    facts = key_facts(request["certification_request_info"]["subject_pk_info"])
    if facts.explicit_parameters:
        raise InputError(f"{source}: CSR key uses explicit curve parameters; only named curves (RFC 5480) are allowed")
    if facts.curve is not None and facts.curve not in NAMED_CURVES:
        raise InputError(f"{source}: CSR key is on curve {facts.curve}; not an allowed curve")
    if not facts.point_uncompressed:
        raise InputError(f"{source}: CSR EC point is not uncompressed (RFC 5480 2.2)")
    return facts.algorithm


def _signature_algorithm(request: asn1_csr.CertificationRequest, source: str, profile: ResolvedProfile) -> str:
    identifier = request["signature_algorithm"]
    name = signature_name(str(identifier["algorithm"].dotted))
    if "SHA1" in name:
        raise InputError(f"{source}: CSR is signed with {name}; SHA-1 is not allowed")
    params = identifier["parameters"]
    if name.startswith("ecdsa") and not isinstance(params, core.Void):
        kind = "NULL parameters" if params.dump() == b"\x05\x00" else "parameters"
        raise InputError(f"{source}: CSR signature algorithm {name} carries {kind}; RFC 5758 3.2 says absent")
    if name not in profile.rules.signature_algorithms:
        raise InputError(
            f"{source}: CSR is signed with {name}; profile {profile.name} allows "
            f"{', '.join(profile.rules.signature_algorithms)}"
        )
    return name


def _requested(
    csr: x509.CertificateSigningRequest, request: asn1_csr.CertificationRequest, source: str
) -> RequestedIdentity:
    eui64 = role = name = None
    for rdn in request["certification_request_info"]["subject"].chosen:
        for atv in rdn:
            oid, value = atv["type"].dotted, atv["value"]
            if oid == X500_UNIQUE_IDENTIFIER_OID:
                contents = bytes(value.contents)
                if len(contents) != 9 or contents[0] != 0:
                    raise InputError(f"{source}: CSR x500UniqueIdentifier is not a 64-bit EUI-64")
                eui64 = contents[1:].hex().upper()
            elif oid == "2.5.4.11":
                role = normalise_role(str(value.native))
            elif oid == "2.5.4.3":
                name = str(value.native)
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError as exc:
        raise InputError(f"{source}: CSR extension request is malformed") from exc
    for general_name in san or []:
        if isinstance(general_name, x509.OtherName) and general_name.type_id.dotted_string == HARDWARE_MODULE_NAME_OID:
            try:
                _, serial = parse_hardware_module_name(general_name.value)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{source}: CSR hardwareModuleName is malformed") from exc
            if len(serial) != 8:
                raise InputError(f"{source}: CSR hardwareModuleName serial is {len(serial)} octets, not 8")
            if eui64 is not None and eui64 != serial.hex().upper():
                raise InputError(f"{source}: CSR names two different EUI-64s")
            eui64 = serial.hex().upper()
    return RequestedIdentity(eui64=eui64, role=role, name=name)


def parse_csr(data: bytes, profile: ResolvedProfile, source: str) -> CertificationRequest:
    """Check a CSR's encoding, key and signature against ``profile``; any defect → InputError."""
    try:
        return _parse_csr(data, profile, source)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # asn1crypto parses lazily: a malformed inner structure surfaces on first access.
        raise InputError(f"{source}: CSR is malformed ({type(exc).__name__} while decoding)") from exc


def _parse_csr(data: bytes, profile: ResolvedProfile, source: str) -> CertificationRequest:
    der = _der(data, source)
    request = _parse(der, source)
    key_algorithm = _key_algorithm(request, source)
    if key_algorithm in ("ed25519", "ed448", "dsa", "rsassa_pss"):
        raise InputError(
            f"{source}: CSR key is {key_algorithm}; profile {profile.name} allows "
            f"{', '.join(profile.rules.key_algorithms)}"
        )
    if key_algorithm not in profile.rules.key_algorithms:
        shown = key_algorithm.upper() if key_algorithm.startswith("rsa") else key_algorithm
        raise InputError(
            f"{source}: CSR key is {shown}; profile {profile.name} allows {', '.join(profile.rules.key_algorithms)}"
        )
    signature_algorithm = _signature_algorithm(request, source, profile)
    try:
        csr = x509.load_der_x509_csr(der)
        valid = csr.is_signature_valid
        public_key = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise InputError(f"{source}: CSR cannot be loaded ({type(exc).__name__})") from exc
    if not valid:
        raise InputError(f"{source}: CSR signature does not verify (proof of possession failed)")
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InputError(f"{source}: CSR key type is not supported")
    return CertificationRequest(
        der=der,
        public_key=public_key,
        key_algorithm=key_algorithm,
        signature_algorithm=signature_algorithm,
        requested=_requested(csr, request, source),
        sha256=hashlib.sha256(der).hexdigest(),
        source=source,
    )


def check_identity(request: CertificationRequest, *, eui64: str | None, role: str | None, name: str | None) -> None:
    """The approved identity wins; a CSR asking for a different one is refused."""
    asked = request.requested
    for what, wanted, approved in (
        ("EUI-64", asked.eui64, eui64),
        ("role", asked.role, role),
        ("name", asked.name, name),
    ):
        if wanted is None:
            continue
        if approved is None or wanted.upper() != approved.upper():
            raise InputError(
                f"{request.source}: CSR asks for {what} {wanted} but the approved request is for "
                f"{approved if approved is not None else 'none'}"
            )
