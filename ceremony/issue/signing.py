"""The signing pipeline every issuer shares: lint a throwaway-signed copy, sign, compare TBS, verify, check again."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import CeremonyError, InputError, StateError
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.algorithms import CAPrivateKey, signature_hash
from ceremony.model.der import serial_hex
from ceremony.model.profiles import ResolvedProfile
from ceremony.record.inventory import CARecord
from ceremony.record.workspace import Workspace


class IssuanceError(CeremonyError):
    """A certificate failed a check before or after signing: nothing was issued (one signed and then
    refused is journalled as ``certificate.discarded``)."""


@cache
def _throwaway_key(kind: str) -> CAPrivateKey:
    # Signs the lint copy only; a fresh software key of the CA key's type, never stored.
    if kind == "secp384r1":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "secp256r1":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind))


def _throwaway_for(key: CAPrivateKey) -> CAPrivateKey:
    return _throwaway_key(key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else str(key.key_size))


def new_serial(ws: Workspace, issuer_ca: str) -> int:
    """16 random octets, positive with a non-zero first octet (so DER keeps all 16), unique per issuer."""
    while True:
        raw = bytearray(secrets.token_bytes(16))
        raw[0] &= 0x7F
        if raw[0] == 0:
            continue
        serial = int.from_bytes(raw, "big")
        if not ws.inventory.serial_exists(issuer_ca, serial_hex(serial)):
            return serial


def _findings_text(findings: list[object]) -> str:
    return "; ".join(str(f) for f in findings[:3])


Discard = Callable[[x509.Certificate, str], None]


def sign_checked(
    builder: x509.CertificateBuilder,
    profile: ResolvedProfile,
    key: CAPrivateKey,
    issuer_cert: x509.Certificate | None,
    *,
    on_discard: Discard | None = None,
) -> x509.Certificate:
    """Lint a throwaway-signed copy, sign for real, compare TBS bytes, verify, check again.

    A failure after the real signature calls ``on_discard(cert, reason)`` first, so that a
    certificate the CA key signed but the workbench refused is still on record.
    """
    algorithm, sig_name = signature_hash(key)
    if sig_name not in profile.rules.signature_algorithms:
        raise InputError(
            f"the CA signs with {sig_name}; profile {profile.name} allows "
            f"{', '.join(profile.rules.signature_algorithms)}"
        )
    draft = builder.sign(_throwaway_for(key), algorithm)
    problems = failing(check_certificate(draft.public_bytes(serialization.Encoding.DER), profile))
    if problems:
        raise IssuanceError(f"pre-issuance lint failed for profile {profile.name}: {_findings_text(list(problems))}")
    cert = builder.sign(key, algorithm)
    reason = _post_signing_problem(cert, draft, profile, issuer_cert)
    if reason is not None:
        if on_discard is not None:
            on_discard(cert, reason)
        raise IssuanceError(f"{reason}; certificate discarded")
    return cert


def _post_signing_problem(
    cert: x509.Certificate, draft: x509.Certificate, profile: ResolvedProfile, issuer_cert: x509.Certificate | None
) -> str | None:
    if cert.tbs_certificate_bytes != draft.tbs_certificate_bytes:
        return "the signed TBS differs from the linted TBS"
    anchor = issuer_cert if issuer_cert is not None else cert
    try:
        cert.verify_directly_issued_by(anchor)
    except (InvalidSignature, ValueError, TypeError) as exc:
        return f"signature does not verify with the issuer's public key ({type(exc).__name__})"
    problems = failing(check_certificate(cert.public_bytes(serialization.Encoding.DER), profile, issuer=anchor))
    if problems:
        return f"post-issuance check failed: {_findings_text(list(problems))}"
    return None


def issuer_of(ws: Workspace, ca_name: str) -> tuple[CARecord, x509.Certificate, CAPrivateKey]:
    ca = ws.inventory.ca(ca_name)
    cert = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(ca_name))
    if ca.key_store != ws.config.key_store.kind:
        raise StateError(
            f"CA {ca_name!r} key is in a {ca.key_store} store; this workspace uses {ws.config.key_store.kind}"
        )
    ws.refuse_destroyed(ca.key_label)
    return ca, cert, ws.key_store.load(ca.key_label)
