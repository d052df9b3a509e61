"""Template-conformance lint: many certificates of one profile checked at once, with the full lint's findings.

Certificates built from a profile's DER template (every batch certificate) share every byte of
their tbsCertificate outside a few fixed-length primitive contents: the serial, the UTCTime
validity fields, the EC point's coordinates, the subjectKeyIdentifier and the hwSerialNum
(EUI-64). One certificate of a group, the exemplar, gets the full lint (``check_each``); its
variable fields are located in its own bytes. Every other certificate of the same shape is
compared with the exemplar as one numpy array: equal bytes outside the variable fields mean the
same ASN.1 tree with other contents in those fields, so every check that does not read them gives
the exemplar's findings. The checks that do read them (``VARIABLE_CHECKS``) are decided per
certificate by vectorised rules (serial sign, validity per the profile and the issuer, point on the
curve, SKI method 2, the signature under the issuer) that flag a certificate conservatively; a
flagged certificate, or one that does not match, takes the full lint. An exemplar qualifies only
when those checks found nothing on it and no check crashed, so a certificate on the template path
has exactly the exemplar's findings under its own subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from asn1crypto import core
from cryptography import x509

from ceremony.clock import current
from ceremony.errors import InputError
from ceremony.lint.certificate import (
    _CURVES,
    _TIME_FORMATS,
    ParsedCertificate,
    _other_name_value,
    _verify,
    check_each,
    check_key,
    check_serial,
    check_signature,
    check_subject_key_identifier,
    check_validity,
    parse_certificate,
)
from ceremony.lint.findings import Finding, Severity
from ceremony.model.der import (
    HARDWARE_MODULE_NAME_OID,
    X500_UNIQUE_IDENTIFIER_OID,
    gbcs_key_identifier,
    key_facts,
    parse_hardware_module_name,
    signature_name,
)
from ceremony.model.profiles import ResolvedProfile

#: The checks that read a variable field; every other check reads only bytes the template fixes.
VARIABLE_CHECKS = frozenset({check_key, check_serial, check_validity, check_subject_key_identifier, check_signature})
#: Exemplars tried per certificate shape before the rest of that shape takes the full lint.
MAX_EXEMPLARS = 8
#: Certificates compared as one array at a time (bounded memory: CHUNK x tbsCertificate length octets).
CHUNK = 20_000
#: Short Weierstrass curves with a = -3: (p, b), to decide "on the curve" without building a key object.
_CURVE_EQUATIONS = {
    "secp256r1": (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
}


@dataclass(frozen=True)
class Linted:
    """Per certificate, the findings ``check_certificate`` gives; and how many took the template path."""

    findings: list[list[Finding]]
    templated: int


@dataclass(frozen=True)
class _Issuer:
    certificate: x509.Certificate | None
    key: Any
    not_after: float

    @classmethod
    def of(cls, certificate: x509.Certificate | None) -> _Issuer:
        if certificate is None:
            return cls(None, None, 0.0)
        return cls(certificate, certificate.public_key(), certificate.not_valid_after_utc.timestamp())


def _shape(der: bytes) -> tuple[int, int, int] | None:
    """(outer header length, its length-octet form, tbsCertificate length) of a minimally encoded SEQUENCE."""
    if len(der) < 8 or der[0] != 0x30:
        return None
    form = der[1]
    if form == 0x82:
        header, total = 4, der[2] << 8 | der[3]
        minimal = total >= 0x100
    elif form == 0x81:
        header, total = 3, der[2]
        minimal = total >= 0x80
    else:
        return None
    if not minimal or header + total != len(der) or der[header] != 0x30:
        return None
    tbs_form = der[header + 1]
    if tbs_form == 0x82:
        tbs = 4 + (der[header + 2] << 8 | der[header + 3])
    elif tbs_form == 0x81:
        tbs = 3 + der[header + 2]
    else:
        return None
    return (header, form, tbs) if header + tbs < len(der) else None


def _once(tbs: bytes, needle: bytes) -> int:
    at = tbs.find(needle)
    if at < 0 or tbs.find(needle, at + 1) >= 0:
        raise ValueError("not found exactly once")
    return at


@dataclass(frozen=True)
class _Template:
    """An exemplar that had the full lint, its findings, and where its variable fields lie (TBS offsets)."""

    header: int
    length: int
    tbs: np.ndarray[Any, np.dtype[np.uint8]]
    mask: np.ndarray[Any, np.dtype[np.uint8]]
    signature_algorithm: bytes
    signature_name: str
    serial: tuple[int, int]
    #: notBefore and notAfter: (offset of UTCTime contents, -1) when variable, or (-1, fixed epoch seconds).
    times: tuple[tuple[int, float], tuple[int, float]]
    #: (offset, octets) of the EC point's coordinates and of the SKI contents; (-1, 0) when not variable.
    point: tuple[int, int]
    curve: str
    ski: tuple[int, int]
    findings: tuple[Finding, ...]

    @classmethod
    def of(
        cls, der: bytes, shape: tuple[int, int, int], parsed: ParsedCertificate, found: list[tuple[Any, list[Finding]]]
    ) -> _Template | None:
        """The template of a qualifying exemplar, or None (a crash, or a finding of a variable check)."""
        if any(f.severity == Severity.FATAL for _, fs in found for f in fs):
            return None
        if any(fs for check, fs in found if check in VARIABLE_CHECKS):
            return None
        header, _, length = shape
        tbs = der[header : header + length]
        fields: list[tuple[int, int]] = []
        try:
            t = parsed.tbs
            serial_contents = bytes(t["serial_number"].contents)
            serial = (_once(tbs, b"\x02" + bytes([len(serial_contents)]) + serial_contents) + 2, len(serial_contents))
            fields.append(serial)
            times: list[tuple[int, float]] = []
            for name in ("not_before", "not_after"):
                value = t["validity"][name]
                if value.name == "utc_time":
                    contents = bytes(value.chosen.contents)
                    at = _once(tbs, b"\x17\x0d" + contents) + 2
                    fields.append((at, 13))
                    times.append((at, -1.0))
                else:
                    times.append((-1, value.native.timestamp()))
            facts = key_facts(t["subject_public_key_info"])
            point = (-1, 0)
            if facts.curve in _CURVES and facts.point_uncompressed and not facts.explicit_parameters:
                coordinates = parsed.public_key_bits[1:]
                point = (_once(tbs, coordinates), len(coordinates))
                fields.append(point)
            ski = (-1, 0)
            for oid, _, extension in parsed.extensions:
                if oid == "2.5.29.14":
                    identifier = bytes(extension["extn_value"].parsed.native)
                    ski = (_once(tbs, b"\x04" + bytes([len(identifier)]) + identifier) + 2, len(identifier))
                    fields.append(ski)
                elif oid == "2.5.29.17":
                    for name in extension["extn_value"].parsed:
                        if name.name == "other_name" and name.chosen["type_id"].dotted == HARDWARE_MODULE_NAME_OID:
                            _, eui64 = parse_hardware_module_name(_other_name_value(name.chosen))
                            fields.append((_once(tbs, b"\x04" + bytes([len(eui64)]) + eui64) + 2, len(eui64)))
            for rdn in t["subject"].chosen:
                for attribute in rdn:
                    if attribute["type"].dotted == X500_UNIQUE_IDENTIFIER_OID:
                        # SMKI's EUI-64 in the subject: check_subject reads only its type and length.
                        bits = bytes(attribute["value"].contents or b"")
                        if bits[:1] == b"\x00":
                            at = _once(tbs, b"\x03" + bytes([len(bits)]) + bits) + 3
                            fields.append((at, len(bits) - 1))
            outer = parsed.cert["signature_algorithm"]
        except (ValueError, TypeError, KeyError):
            return None
        mask = np.full(length, 0xFF, dtype=np.uint8)
        for at, size in fields:
            mask[at : at + size] = 0
        return cls(
            header=header,
            length=length,
            tbs=np.frombuffer(tbs, dtype=np.uint8),
            mask=mask,
            signature_algorithm=bytes(outer.dump()),
            signature_name=signature_name(outer["algorithm"].dotted),
            serial=serial,
            times=(times[0], times[1]),
            point=point,
            curve=str(facts.curve),
            ski=ski,
            findings=tuple(f for check, fs in found if check not in VARIABLE_CHECKS for f in fs),
        )

    def signature(self, der: bytes) -> bytes | None:
        """The signature octets when everything after the TBS is the exemplar's algorithm and one BIT STRING."""
        at = self.header + self.length
        if der[at : at + len(self.signature_algorithm)] != self.signature_algorithm:
            return None
        at += len(self.signature_algorithm)
        if len(der) < at + 3 or der[at] != 0x03 or der[at + 1] >= 0x80 or der[at + 2] != 0:
            return None
        if at + 2 + der[at + 1] != len(der):
            return None
        return der[at + 3 :]


def _times(block: np.ndarray[Any, np.dtype[np.uint8]]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(valid, epoch seconds) per row of UTCTime contents, each distinct value decoded once by asn1crypto."""
    values, inverse = np.unique(block.view(f"S{block.shape[1]}").ravel(), return_inverse=True)
    valid = np.zeros(len(values), dtype=bool)
    seconds = np.zeros(len(values), dtype=np.float64)
    for n, raw in enumerate(values.tolist()):
        contents = raw.ljust(13, b"\0")
        if not _TIME_FORMATS["utc_time"].fullmatch(contents):
            continue
        try:
            seconds[n] = core.UTCTime.load(b"\x17\x0d" + contents).native.timestamp()
        except (ValueError, TypeError, OverflowError):
            continue
        valid[n] = True
    return valid[inverse.ravel()], seconds[inverse.ravel()]


def _on_curve(curve: str, coordinates: bytes) -> bool:
    equation = _CURVE_EQUATIONS.get(curve)
    if equation is None:
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[curve], b"\x04" + coordinates)
        except ValueError:
            return False
        return True
    p, b = equation
    half = len(coordinates) // 2
    x, y = int.from_bytes(coordinates[:half], "big"), int.from_bytes(coordinates[half:], "big")
    return x < p and y < p and (y * y - x * x * x + 3 * x - b) % p == 0


def _validity_flags(
    template: _Template, arr: np.ndarray[Any, Any], profile: ResolvedProfile, issuer: _Issuer, now: float
) -> np.ndarray[Any, Any]:
    """Rows whose validity check could say anything (a superset: those rows take the full lint)."""
    flagged = np.zeros(len(arr), dtype=bool)
    seconds = []
    for at, fixed in template.times:
        if at < 0:
            seconds.append(np.full(len(arr), fixed))
            continue
        valid, value = _times(np.ascontiguousarray(arr[:, at : at + 13]))
        flagged |= ~valid
        seconds.append(value)
    not_before, not_after = seconds
    rule = profile.rules.validity
    if rule.fixed_not_after:
        wanted = datetime.strptime(rule.fixed_not_after, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)
        flagged |= not_after != wanted.timestamp()
    elif rule.max_days is not None:
        flagged |= (not_after - not_before) >= rule.max_days * 86400
    flagged |= not_after <= not_before
    if issuer.certificate is not None and rule.within_issuer:
        flagged |= not_after >= issuer.not_after
    flagged |= not_after <= now + 1
    return flagged


def _rows(arr: np.ndarray[Any, Any], field: tuple[int, int]) -> list[bytes]:
    """Each row's octets of one variable field (empty when the field is not variable)."""
    start, size = field
    if start < 0:
        return [b""] * len(arr)
    block = np.ascontiguousarray(arr[:, start : start + size])
    # Fixed-width bytes drop trailing NULs; pad them back.
    return [v.ljust(size, b"\0") for v in block.view(f"S{size}").ravel().tolist()]


def _match(
    template: _Template,
    ders: Sequence[bytes],
    members: list[int],
    profile: ResolvedProfile,
    issuer: _Issuer,
    now: float,
) -> tuple[list[int], list[int], list[int]]:
    """(on the template path, matching but flagged, not matching) among ``members``."""
    signatures: list[bytes | None] = [template.signature(ders[i]) for i in members]
    tails_ok = [i for i, sig in zip(members, signatures, strict=True) if sig is not None]
    others = [i for i, sig in zip(members, signatures, strict=True) if sig is None]
    signature_of = dict(zip(members, signatures, strict=True))
    h, n = template.header, template.length
    arr = np.frombuffer(b"".join(ders[i][h : h + n] for i in tails_ok), dtype=np.uint8).reshape(-1, n)
    same = ~((arr ^ template.tbs) & template.mask).any(axis=1)
    others += [i for i, ok in zip(tails_ok, same.tolist(), strict=True) if not ok]
    arr = arr[same]
    matched = [i for i, ok in zip(tails_ok, same.tolist(), strict=True) if ok]
    at, size = template.serial
    flagged = (arr[:, at] >= 0x80) | ~arr[:, at : at + size].any(axis=1) if size else np.ones(len(arr), dtype=bool)
    flagged |= _validity_flags(template, arr, profile, issuer, now)
    key_bits, has_ski = template.point[0] >= 0, template.ski[0] >= 0
    good: list[int] = []
    suspect: list[int] = []
    rows = zip(matched, flagged.tolist(), _rows(arr, template.point), _rows(arr, template.ski), strict=True)
    for i, bad, point, ski in rows:
        if bad or (key_bits and not _on_curve(template.curve, point)):
            suspect.append(i)
        elif has_ski and (not key_bits or ski != gbcs_key_identifier(b"\x04" + point)):
            suspect.append(i)
        elif (
            issuer.key is not None
            and _verify(issuer.key, signature_of[i] or b"", ders[i][h : h + n], template.signature_name) is False
        ):
            suspect.append(i)
        else:
            good.append(i)
    return good, suspect, others


def check_certificates(
    ders: Sequence[bytes],
    profile: ResolvedProfile,
    *,
    issuer: x509.Certificate | None = None,
    subjects: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Linted:
    """Lint many DER certificates against one profile, with exactly the findings ``check_certificate`` gives each.

    Args:
        ders: the certificates, DER.
        profile: the resolved profile to check them against.
        issuer: the issuing CA certificate: signature, issuer-name and AKI checks (one verification each).
        subjects: how findings name each certificate (default: unnamed).
        now: the clock for the expiry NOTICE only.

    Returns:
        ``Linted``: per certificate its findings in check order, and how many took the template path.

    Raises:
        InputError: a certificate is no X.509 certificate at all (as ``check_certificate``).
    """
    when = now or current().now()
    names = list(subjects) if subjects is not None else [""] * len(ders)
    who = _Issuer.of(issuer)
    out: list[list[Finding] | None] = [None] * len(ders)

    refused: dict[int, InputError] = {}

    def full(i: int) -> tuple[ParsedCertificate | None, list[tuple[Any, list[Finding]]]]:
        try:
            parsed = parse_certificate(ders[i], names[i])
        except InputError as exc:
            refused[i] = exc
            return None, []
        found = check_each(parsed, profile, issuer=issuer, subject=names[i], now=when)
        out[i] = [f for _, fs in found for f in fs]
        return parsed, found

    shapes: dict[tuple[int, int, int], list[int]] = {}
    for i, der in enumerate(ders):
        shape = _shape(der)
        if shape is None:
            full(i)
        else:
            shapes.setdefault(shape, []).append(i)
    templated = 0
    for shape, pending in shapes.items():
        for _ in range(MAX_EXEMPLARS):
            if not pending:
                break
            first, pending = pending[0], pending[1:]
            parsed, found = full(first)
            template = _Template.of(ders[first], shape, parsed, found) if parsed is not None else None
            if template is None:
                continue
            left: list[int] = []
            for start in range(0, len(pending), CHUNK):
                good, suspect, others = _match(
                    template, ders, pending[start : start + CHUNK], profile, who, when.timestamp()
                )
                for i in good:
                    out[i] = [Finding(f.severity, f.code, f.message, names[i]) for f in template.findings]
                templated += len(good)
                for i in suspect:
                    full(i)
                left += others
            pending = left
        for i in pending:
            full(i)
    if refused:
        raise refused[min(refused)]  # the first one in order, as one check_certificate after another would
    return Linted([f if f is not None else [] for f in out], templated)
