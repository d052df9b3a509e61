"""The signing pipeline every issuer shares: lint a throwaway-signed copy, sign, compare TBS, verify, check again."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import CeremonyError, InputError
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.algorithms import CAPrivateKey, key_algorithm_of, signature_hash
from ceremony.model.der import key_size_bits, serial_hex, signature_name
from ceremony.model.profiles import ResolvedProfile
from ceremony.model.tbs import Identity
from ceremony.record.inventory import CertificateRecord
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


def certificates_dir(ca_name: str) -> str:
    """Where single issuance writes a CA's certificates, relative to the workspace (then ``<serial>.pem``)."""
    return f"artifacts/certificates/{ca_name}/"


def certificate_record(
    cert: x509.Certificate,
    *,
    issuer_ca: str,
    profile: str,
    identity: Identity,
    approved_by: str,
    csr_sha256: str | None,
    key_store: str | None,
    artifact: str,
    now: datetime,
) -> CertificateRecord:
    """The inventory row of a certificate the workbench signed (parsed once, at issue time)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return CertificateRecord(
        serial=serial_hex(cert.serial_number),
        issuer_ca=issuer_ca,
        issuer=cert.issuer.rfc4514_string(),
        subject=cert.subject.rfc4514_string(),
        eui64=identity.eui64,
        role=identity.role,
        usage=identity.usage,
        name=identity.name,
        profile=profile,
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        key_algorithm=key_algorithm_of(cert.public_key()),  # type: ignore[arg-type]
        signature_algorithm=signature_name(cert.signature_algorithm_oid.dotted_string),
        policy_oids=" ".join(p.policy_identifier.dotted_string for p in policies),
        ski=ski.hex().upper(),
        aki=aki.hex().upper() if aki else None,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        status="valid",
        approved_by=approved_by,
        csr_sha256=csr_sha256,
        key_store=key_store,
        batch_id=None,
        ceremony_id=None,
        issued_at=now.isoformat(timespec="microseconds"),
        artifact=artifact,
        der=der,
        key_size=key_size_bits(key_algorithm_of(cert.public_key())),  # type: ignore[arg-type]
    )
