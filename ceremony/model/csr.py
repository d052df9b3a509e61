"""CSR intake: raw encoding checks (asn1crypto), proof of possession, and the identity a CSR asks for.

cryptography silently normalises some encodings (explicit curve parameters, NULL signature
parameters, the NEW CERTIFICATE REQUEST label), so the checks that must see the encoding run
on the DER itself before cryptography verifies the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import core, keys, parser
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import InputError
from ceremony.model.algorithms import CAPublicKey
from ceremony.model.der import (
    HARDWARE_MODULE_NAME_OID,
    NAMED_CURVES,
    X500_UNIQUE_IDENTIFIER_OID,
    key_facts,
    parse_hardware_module_name,
    signature_name,
)
from ceremony.model.profiles import ResolvedProfile

MAX_CSR_BYTES = 1 << 20
#: RFC 7468 section 7 names "CERTIFICATE REQUEST"; "NEW CERTIFICATE REQUEST" is the legacy label (Netscape, certreq).
PEM_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")

_EUI64 = re.compile(r"^[0-9A-F]{16}$")
_ROLE = re.compile(r"^[0-9A-Fa-f]{1,2}$")
# RFC 7468 section 3: one block, base64 lines, matching labels; only whitespace around it.
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^\r\n]*?)-----\r?\n(.*?)-----END ([^\r\n]*?)-----", re.DOTALL)

_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
_SUBJECT_ALT_NAME = "2.5.29.17"
#: Subject attributes that carry a requested identity (SMKI organisation pattern), by display name.
_IDENTITY_ATTRIBUTES = {"2.5.4.3": "CN", "2.5.4.11": "OU", X500_UNIQUE_IDENTIFIER_OID: "x500UniqueIdentifier"}
#: asn1crypto's key algorithm names → how an operator knows them.
_KEY_DISPLAY = {
    "ed25519": "Ed25519",
    "ed448": "Ed448",
    "x25519": "X25519",
    "x448": "X448",
    "dsa": "DSA",
    "rsassa_pss": "RSASSA-PSS",
}
_CURVE_DISPLAY = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


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


def _shown(text: str, limit: int = 40) -> str:
    """Operator input quoted for a one-line message (repr escapes newlines and control characters)."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def normalise_eui64(text: str) -> str:
    """An EUI-64 as 16 uppercase hex digits.

    Args:
        text: 16 hex digits, optionally separated by '-', ':' or spaces.

    Raises:
        InputError: ``text`` is not 16 hex digits.
    """
    value = re.sub(r"[-: ]", "", text).upper()
    if not _EUI64.match(value):
        raise InputError(f"EUI-64 must be 16 hex digits (got {_shown(text)})")
    return value


def normalise_role(text: str) -> str:
    """A RemotePartyRole code as two uppercase hex digits.

    Raises:
        InputError: ``text`` is not one or two hex digits.
    """
    if not _ROLE.match(text):
        raise InputError(f"role must be one or two hex digits (got {_shown(text, 20)})")
    return text.upper().rjust(2, "0")


def read_csr(path: Path) -> bytes:
    """The bytes of a CSR file, refused before reading when it is over ``MAX_CSR_BYTES``.

    The file must be a regular file: a FIFO or a device is refused without blocking on it (it is opened
    non-blocking and checked again once open, so nothing swapped in after the first look is read either).

    Raises:
        InputError: the file is missing, unreadable, not a regular file or too large.
    """
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{path}: not a regular file")
        if status.st_size > MAX_CSR_BYTES:
            raise InputError(f"{path}: CSR file is {status.st_size} bytes; the limit is {MAX_CSR_BYTES} (1 MiB)")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(f"{path}: not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(MAX_CSR_BYTES + 1)  # bounded: the file may have grown since stat
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(f"{path}: cannot read CSR ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > MAX_CSR_BYTES:
        raise InputError(f"{path}: CSR file is over the limit of {MAX_CSR_BYTES} bytes (1 MiB)")
    return data


def csr_der(data: bytes, source: str) -> bytes:
    """The DER inside ``data``: one strict RFC 7468 PEM block, or the bytes themselves."""
    if not data.strip():
        raise InputError(f"{source}: CSR is empty")
    if len(data) > MAX_CSR_BYTES:
        raise InputError(f"{source}: CSR is {len(data)} bytes; the limit is {MAX_CSR_BYTES} (1 MiB)")
    text = data.strip()
    if not text.startswith(b"-----BEGIN "):
        if data[:1] != b"\x30" and b"-----BEGIN " in data:  # 0x30: a DER SEQUENCE, whatever its strings say
            raise InputError(f"{source}: CSR has text before its PEM block; give the PEM block alone")
        return data
    blocks = text.count(b"-----BEGIN ")
    if blocks != 1:
        raise InputError(f"{source}: expected one PEM block, found {blocks}")
    match = _PEM_BLOCK.match(text)
    if match is None:
        raise InputError(f"{source}: malformed PEM (no END line for the BEGIN line)")
    begin, body, end = (part.decode("ascii", "replace") for part in match.groups())
    if begin != end:
        raise InputError(f"{source}: PEM BEGIN label {_shown(begin)} does not match END label {_shown(end)}")
    if begin not in PEM_LABELS:
        raise InputError(f"{source}: PEM label is {_shown(begin)}; expected CERTIFICATE REQUEST")
    if text[match.end() :].strip():
        raise InputError(f"{source}: CSR has text after its PEM block")
    try:
        return base64.b64decode(re.sub(r"\s", "", body), validate=True)
    except binascii.Error as exc:
        raise InputError(f"{source}: PEM body is not valid base64") from exc


def _parse(der: bytes, source: str) -> asn1_csr.CertificationRequest:
    try:
        _, _, _, header, contents, trailer = parser.parse(der)
        extra = len(der) - len(header) - len(contents) - len(trailer)
        request = asn1_csr.CertificationRequest.load(der[: len(der) - extra], strict=True)
        info = request["certification_request_info"]
        # asn1crypto parses lazily: decode everything once so a malformed structure fails here,
        # not in a later check. It raises AttributeError for universal types it cannot decode
        # (REAL, ObjectDescriptor, INSTANCE OF) inside an ANY.
        _ = request.native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise InputError(f"{source}: not a DER-encoded PKCS#10 CSR (truncated or malformed)") from exc
    if extra:
        raise InputError(f"{source}: CSR is followed by {extra} octets of trailing data")
    if info["version"].native != "v1":
        raise InputError(f"{source}: CSR version is {info['version'].native}; PKCS#10 (RFC 2986) defines only v1")
    return request


def _ec_encoding(spki: Any, source: str) -> None:
    """RFC 5480 2.1.1 and 2.2: namedCurve parameters and an uncompressed point of the curve's length."""
    params = spki["algorithm"]["parameters"]
    form = params.name if isinstance(params, keys.ECDomainParameters) else None
    if form == "specified":
        raise InputError(f"{source}: CSR key uses explicit curve parameters; only named curves (RFC 5480) are allowed")
    if form == "implicit_ca":
        raise InputError(
            f"{source}: CSR key uses implicitCA curve parameters; only named curves (RFC 5480) are allowed"
        )
    if form != "named":
        raise InputError(f"{source}: CSR EC key has no curve parameters; RFC 5480 2.1.1 requires a named curve")
    curve = str(params.chosen.native)
    raw = bytes(spki["public_key"].contents)
    point = raw[1:]  # after the BIT STRING's unused-bits octet
    if raw[:1] != b"\x00":
        raise InputError(f"{source}: CSR public key BIT STRING is malformed")
    if point[:1] in (b"\x02", b"\x03"):
        raise InputError(f"{source}: CSR EC point is compressed, not uncompressed (RFC 5480 2.2)")
    if point[:1] != b"\x04":
        raise InputError(f"{source}: CSR EC point is not uncompressed (RFC 5480 2.2: first octet 0x04)")
    if curve in NAMED_CURVES:
        size = 1 + 2 * NAMED_CURVES[curve][1]
        if len(point) != size:
            raise InputError(
                f"{source}: CSR EC point is {len(point)} octets; "
                f"an uncompressed {_CURVE_DISPLAY[curve]} point is {size}"
            )


def _key_algorithm(request: asn1_csr.CertificationRequest, source: str, profile: ResolvedProfile) -> str:
    spki = request["certification_request_info"]["subject_pk_info"]
    allowed = ", ".join(profile.rules.key_algorithms)
    if spki["algorithm"]["algorithm"].dotted == _EC_PUBLIC_KEY:
        _ec_encoding(spki, source)
    facts = key_facts(spki)
    if facts.curve is not None and facts.curve not in NAMED_CURVES:
        raise InputError(f"{source}: CSR key is on curve {facts.curve}; profile {profile.name} allows {allowed}")
    if facts.algorithm not in profile.rules.key_algorithms:
        if facts.algorithm.startswith("rsa-"):
            shown = facts.algorithm.upper()
        else:
            shown = _KEY_DISPLAY.get(facts.algorithm, facts.algorithm)
        raise InputError(f"{source}: CSR key is {shown}; profile {profile.name} allows {allowed}")
    return facts.algorithm


def _signature_encoding(request: asn1_csr.CertificationRequest, source: str) -> str:
    identifier = request["signature_algorithm"]
    name = signature_name(str(identifier["algorithm"].dotted))
    if "sha1" in name.lower():
        raise InputError(f"{source}: CSR is signed with {name}; SHA-1 is not allowed")
    params = identifier["parameters"]
    # RFC 5758 3.2: the ecdsa-with-SHA2 AlgorithmIdentifiers MUST omit the parameters field.
    if name.startswith("ecdsa") and not isinstance(params, core.Void):
        kind = "NULL parameters" if params.dump() == b"\x05\x00" else "parameters"
        raise InputError(f"{source}: CSR signature algorithm {name} carries {kind}; RFC 5758 3.2 says absent")
    # The signature BIT STRING holds whole octets (an ECDSA-Sig-Value or RSA block): a non-zero
    # unused-bits count is a second encoding of the same signature, which cryptography accepts.
    unused = request["signature"].contents[:1]
    if unused != b"\x00":
        raise InputError(
            f"{source}: CSR signature BIT STRING declares {unused[0] if unused else 'no'} unused bits; 0 expected"
        )
    return name


def _proof_of_possession(der: bytes, source: str) -> CAPublicKey:
    try:
        csr = x509.load_der_x509_csr(der)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError(f"{source}: not a DER-encoded PKCS#10 CSR (cryptography's parser refuses it)") from exc
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(
            f"{source}: CSR public key is invalid (an EC point not on its curve, or a bad RSA key)"
        ) from exc
    try:
        valid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source}: CSR signature cannot be checked ({type(exc).__name__})") from exc
    if not valid:
        raise InputError(f"{source}: CSR signature does not verify (proof of possession failed)")
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InputError(f"{source}: CSR key type is not supported")
    return public_key


def _subject_identity(request: asn1_csr.CertificationRequest, source: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for rdn in request["certification_request_info"]["subject"].chosen:
        for atv in rdn:
            label = _IDENTITY_ATTRIBUTES.get(atv["type"].dotted)
            if label is None:
                continue
            if label in found:
                raise InputError(f"{source}: CSR subject has more than one {label}")
            value = atv["value"]
            if label == "x500UniqueIdentifier":
                # A BIT STRING (X.520); its first content octet is the unused-bits count.
                contents = bytes(value.contents)
                if not isinstance(value, core.BitString | core.OctetBitString) or len(contents) != 9 or contents[0]:
                    raise InputError(f"{source}: CSR x500UniqueIdentifier is not a 64-bit EUI-64")
                found[label] = contents[1:].hex().upper()
            elif label == "OU":
                text = str(value.native)
                if not _ROLE.match(text):
                    raise InputError(f"{source}: CSR subject OU {_shown(text, 20)} is not a role code (two hex digits)")
                found[label] = normalise_role(text)
            else:
                found[label] = str(value.native)
    return found


def _requested_extensions(request: asn1_csr.CertificationRequest, source: str) -> list[Any]:
    """The extensions of the one extensionRequest attribute (PKCS#9, RFC 2985 5.4.2), if any."""
    seen: set[str] = set()
    extensions: list[Any] = []
    for attribute in request["certification_request_info"]["attributes"]:
        oid = attribute["type"].dotted
        if oid in seen:
            raise InputError(f"{source}: CSR has more than one {attribute['type'].native} attribute")
        seen.add(oid)
        if oid != _EXTENSION_REQUEST:
            continue
        if len(attribute["values"]) != 1:
            raise InputError(f"{source}: CSR extensionRequest has {len(attribute['values'])} values; RFC 2985 says one")
        extensions = list(attribute["values"][0])
    ids = [str(ext["extn_id"].dotted) for ext in extensions]
    for oid in ids:
        if ids.count(oid) > 1:
            raise InputError(f"{source}: CSR requests extension {oid} more than once (RFC 5280 4.2)")
    return extensions


def _hardware_module_serials(request: asn1_csr.CertificationRequest, source: str) -> list[str]:
    """EUI-64s asked for as subjectAltName otherName hardwareModuleName (RFC 4108 5)."""
    serials: list[str] = []
    for ext in _requested_extensions(request, source):
        if ext["extn_id"].dotted != _SUBJECT_ALT_NAME:
            continue
        for general_name in ext["extn_value"].parsed:
            if general_name.name != "other_name" or general_name.chosen["type_id"].dotted != HARDWARE_MODULE_NAME_OID:
                continue
            try:
                # otherName value is [0] EXPLICIT: its contents are the HardwareModuleName DER.
                _, _, _, _, inner, _ = parser.parse(general_name.chosen["value"].dump(), strict=True)
                _, serial = parse_hardware_module_name(inner)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{source}: CSR hardwareModuleName is malformed") from exc
            if len(serial) != 8:
                raise InputError(f"{source}: CSR hardwareModuleName serial is {len(serial)} octets, not 8")
            serials.append(serial.hex().upper())
    return serials


def _requested(request: asn1_csr.CertificationRequest, source: str) -> RequestedIdentity:
    subject = _subject_identity(request, source)
    euis = set(_hardware_module_serials(request, source))
    if "x500UniqueIdentifier" in subject:
        euis.add(subject["x500UniqueIdentifier"])
    if len(euis) > 1:
        raise InputError(f"{source}: CSR names {len(euis)} different EUI-64s")
    return RequestedIdentity(
        eui64=euis.pop() if euis else None,
        role=subject.get("OU"),
        name=subject.get("CN"),
    )


def parse_csr(data: bytes, profile: ResolvedProfile, source: str) -> CertificationRequest:
    """Check a CSR's encoding, key and proof of possession against a profile.

    Args:
        data: PEM (label CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST) or DER.
        profile: supplies the allowed key and signature algorithms.
        source: where the bytes came from (a path), named in every message.

    Returns:
        The checked request, with the identity it asks for.

    Raises:
        InputError: any defect, one per message; nothing else escapes for any bytes.
    """
    try:
        return _parse_csr(data, profile, source)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # asn1crypto parses lazily: a malformed inner structure surfaces on first access.
        raise InputError(f"{source}: CSR is malformed ({type(exc).__name__} while decoding)") from exc


def _parse_csr(data: bytes, profile: ResolvedProfile, source: str) -> CertificationRequest:
    der = csr_der(data, source)
    request = _parse(der, source)
    key_algorithm = _key_algorithm(request, source, profile)
    signature_algorithm = _signature_encoding(request, source)
    if signature_algorithm not in profile.rules.signature_algorithms:
        raise InputError(
            f"{source}: CSR is signed with {signature_algorithm}; profile {profile.name} allows "
            f"{', '.join(profile.rules.signature_algorithms)}"
        )
    public_key = _proof_of_possession(der, source)
    return CertificationRequest(
        der=der,
        public_key=public_key,
        key_algorithm=key_algorithm,
        signature_algorithm=signature_algorithm,
        requested=_requested(request, source),
        sha256=hashlib.sha256(der).hexdigest(),
        source=source,
    )


def check_identity(request: CertificationRequest, *, eui64: str | None, role: str | None, name: str | None) -> None:
    """Refuse a CSR that asks for an identity other than the approved one (the approval wins).

    EUI-64 and role are compared as hex (case and separators ignored); the name exactly.
    A CSR that asks for nothing agrees with any approval.

    Raises:
        InputError: the CSR asks for an EUI-64, role or name the approved request does not have.
    """
    asked = request.requested
    approved_eui64 = normalise_eui64(eui64) if eui64 is not None else None
    approved_role = normalise_role(role) if role is not None else None
    for what, wanted, approved in (
        ("EUI-64", asked.eui64, approved_eui64),
        ("role", asked.role, approved_role),
    ):
        if wanted is not None and wanted != approved:
            raise InputError(
                f"{request.source}: CSR asks for {what} {wanted} but the approved request is for "
                f"{approved if approved is not None else 'none'}"
            )
    if asked.name is not None and asked.name != name:
        raise InputError(
            f"{request.source}: CSR asks for name {_shown(asked.name)} but the approved request is for "
            f"{_shown(name) if name is not None else 'none'}"
        )
