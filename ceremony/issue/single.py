"""Issuance: lint a throwaway-signed copy, sign for real, assert identical TBS, verify, check again, record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ceremony.errors import InputError, StateError
from ceremony.faults import crash_point
from ceremony.fs import write_once
from ceremony.issue.recovery import issuer_of, refuse_succeeded
from ceremony.issue.signing import Discard, certificate_record, certificates_dir, new_serial, sign_checked
from ceremony.model.algorithms import CAPrivateKey, KeyAlgorithm
from ceremony.model.csr import CertificationRequest, check_identity, parse_csr
from ceremony.model.der import serial_hex
from ceremony.model.events import CaCreate, CertificateDiscarded, CertificateStored
from ceremony.model.people import check_person, check_role, operator, workspace_register
from ceremony.model.profiles import ResolvedProfile, get_profile
from ceremony.model.tbs import Identity, Issuer, build_tbs, key_identifier
from ceremony.record.inventory import CARecord, CertificateRecord, key_row
from ceremony.record.timestamps import stamp_pending
from ceremony.record.workspace import Workspace


@dataclass(frozen=True)
class Issued:
    """A certificate that passed every check and is recorded in inventory, artifacts and journal."""

    certificate: x509.Certificate
    record: CertificateRecord
    artifact: Path


def _discarder(ws: Workspace, ca: str, profile: str, approved_by: str) -> Discard:
    def record(cert: x509.Certificate, reason: str) -> None:
        ws.journal.append(
            CertificateDiscarded(
                actor=operator(),
                approved_by=approved_by,
                ca=ca,
                profile=profile,
                serial=serial_hex(cert.serial_number),
                fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
                reason=reason,
            ),
        )

    return record


_record = certificate_record


def _stored_event(
    stored: type[CertificateStored], record: CertificateRecord, digest: str, extra: dict[str, object]
) -> CertificateStored:
    """The journal entry of a stored certificate (``ca.create`` or ``certificate.issue``)."""
    return stored(
        actor=operator(),
        approved_by=record.approved_by,
        ca=record.issuer_ca,
        profile=record.profile,
        serial=record.serial,
        eui64=record.eui64,
        usage=record.usage,
        role=record.role,
        csr_sha256=record.csr_sha256,
        fingerprint=record.fingerprint,
        outputs={str(record.artifact): digest},
        extra=extra,
    )


def _store(
    ws: Workspace,
    cert: x509.Certificate,
    record: CertificateRecord,
    *,
    stored: type[CertificateStored],
    extra: dict[str, object],
    ca: CARecord | None = None,
    key: dict[str, Any] | None = None,
) -> Path:
    """Write-once artifact, then inventory row (and the CA's key, when this call generated it) and journal entry."""
    path = ws.root / record.artifact if record.artifact else ws.artifacts_dir
    digest = write_once(path, cert.public_bytes(serialization.Encoding.PEM))
    with ws.inventory.transaction() as db:
        if ca is not None:
            ws.inventory.add_ca(db, ca)
        if key is not None:
            ws.inventory.record_key(db, key)
        ws.inventory.add_certificate(db, record)
        ws.journal.append(_stored_event(stored, record, digest, extra))
    return path


def create_ca(
    ws: Workspace,
    name: str,
    *,
    profile_name: str,
    common_name: str,
    approved_by: str,
    issuer_ca: str | None = None,
    algorithm: KeyAlgorithm = "ec-p256",
    days: int | None = None,
    key_label: str | None = None,
    existing_key: bool = False,
    now: datetime | None = None,
) -> Issued:
    """Generate a CA key in the workspace's key store (or use one a ceremony generated) and issue its certificate.

    A root (``issuer_ca`` None) signs itself; an issuing CA is signed by ``issuer_ca``. The key
    is labelled ``key_label`` (default ``ca-<name>``); with ``existing_key`` it must already be
    in the store.
    """
    check_person(approved_by, "approved-by")
    if now is None:
        ws.journal.check_clock()
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,31}$", name):
        raise InputError(f"CA name must be lower-case letters, digits and '-', got {name!r}")
    profile = get_profile(profile_name, ws.config.oids)
    if not profile.rules.is_ca:
        raise InputError(f"profile {profile_name} is not a CA profile")
    if (issuer_ca is None) != (profile.rules.kind == "root-ca"):
        raise InputError(
            f"profile {profile_name} is a {profile.rules.kind} profile; "
            + ("give an issuer CA" if issuer_ca is None else "a root has no issuer")
        )
    if name in ws.inventory.ca_names():
        raise StateError(f"CA {name!r} already exists in this workspace")
    now = now or ws.clock.now()
    issuer: Issuer | None = None
    issuer_cert: x509.Certificate | None = None
    signer: CAPrivateKey | None = None
    if issuer_ca is not None:
        parent, issuer_cert, signer = issuer_of(ws, issuer_ca)
        if parent.profile not in profile.rules.issued_by:
            raise InputError(
                f"profile {profile_name} must be issued by {', '.join(profile.rules.issued_by)}, "
                f"not by CA {issuer_ca} ({parent.profile})"
            )
        issuer = Issuer(
            issuer_cert.subject,
            key_identifier(issuer_cert.public_key()),  # type: ignore[arg-type]
            issuer_cert.not_valid_after_utc,
        )
    role = profile.rules.subject.roles[0]
    identity = Identity(role=role, name=common_name)
    serial_owner = issuer_ca or name
    serial = new_serial(ws, serial_owner)
    key_label = key_label or f"ca-{name}"
    key = ws.key_store.load(key_label) if existing_key else ws.key_store.generate(key_label, algorithm)
    builder = build_tbs(identity, key.public_key(), profile, issuer, serial, now, days=days)
    discard = _discarder(ws, serial_owner, profile_name, approved_by)
    cert = sign_checked(builder, profile, signer or key, issuer_cert, on_discard=discard)
    artifact = f"artifacts/cas/{name}.pem"
    record = _record(
        cert,
        issuer_ca=serial_owner,
        profile=profile_name,
        identity=identity,
        approved_by=approved_by,
        csr_sha256=None,
        key_store=ws.config.key_store.kind,
        artifact=artifact,
        now=now,
    )
    ca = CARecord(
        name=name,
        role="root" if issuer_ca is None else "issuing",
        profile=profile_name,
        key_store=ws.config.key_store.kind,
        key_label=key_label,
        issuer_ca=issuer_ca,
        serial=record.serial,
        created_at=now.isoformat(timespec="microseconds"),
    )
    path = _store(
        ws,
        cert,
        record,
        stored=CaCreate,
        ca=ca,
        key=None
        if existing_key
        else key_row(
            ws.token_label or ca.key_store,
            key_label,
            key.public_key(),
            key_store=ca.key_store,
            purpose="ca",
            origin="generated",
            ceremony_id=None,
            created_at=now,
        ),
        extra={"name": name, "key_label": ca.key_label, "key_store": ca.key_store},
    )
    return Issued(cert, record, path)


def issue(
    ws: Workspace,
    *,
    ca_name: str,
    profile_name: str,
    csr: bytes,
    csr_source: str,
    identity: Identity,
    approved_by: str,
    now: datetime | None = None,
) -> Issued:
    """Issue one end-entity certificate from a CSR and an approved identity.

    ``approved_by`` is the RA officer who approved the request: the workspace's participant register must name
    them for the ``ra-officer`` role (checked before anything else is read or signed).
    """
    check_role(workspace_register(ws.root), approved_by, "ra-officer", "--approved-by")
    if now is None:
        ws.journal.check_clock()  # before signing: a certificate must not precede the record of earlier ones
    profile = get_profile(profile_name, ws.config.oids)
    if profile.rules.is_ca:
        raise InputError(f"profile {profile_name} is a CA profile; CA certificates come from a key ceremony")
    _check_identity_shape(profile, identity)
    request: CertificationRequest = parse_csr(csr, profile, csr_source)
    check_identity(request, eui64=identity.eui64, role=identity.role, name=identity.name)
    ca, issuer_cert, signer = issuer_of(ws, ca_name)
    refuse_succeeded(ws, ca_name)
    if ca.profile not in profile.rules.issued_by:
        raise InputError(
            f"profile {profile_name} must be issued by a {', '.join(profile.rules.issued_by)} CA, "
            f"not by {ca_name} ({ca.profile})"
        )
    assert identity.eui64 is not None and identity.usage is not None
    existing = ws.inventory.valid_for_identity(ca_name, profile_name, identity.eui64, identity.usage, identity.role)
    if existing:
        raise StateError(
            f"EUI-64 {identity.eui64} already has a valid {identity.usage} certificate "
            f"from {ca_name} (serial {existing[0]}); revoke it or ask for a re-key"
        )
    now = now or ws.clock.now()
    issuer = Issuer(
        issuer_cert.subject,
        key_identifier(issuer_cert.public_key()),  # type: ignore[arg-type]
        issuer_cert.not_valid_after_utc,
    )
    if now < issuer_cert.not_valid_before_utc:
        raise StateError(f"CA {ca_name} is not valid before {issuer_cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z")
    serial = new_serial(ws, ca_name)
    builder = build_tbs(identity, request.public_key, profile, issuer, serial, now)
    cert = sign_checked(
        builder, profile, signer, issuer_cert, on_discard=_discarder(ws, ca_name, profile_name, approved_by)
    )
    crash_point("issue.signed")
    artifact = f"{certificates_dir(ca_name)}{serial_hex(serial)}.pem"
    record = _record(
        cert,
        issuer_ca=ca_name,
        profile=profile_name,
        identity=identity,
        approved_by=approved_by,
        csr_sha256=request.sha256,
        key_store=None,
        artifact=artifact,
        now=now,
    )
    path = _store_issued(ws, cert, record, extra={"csr": csr_source}, csr=request.der)
    stamp_pending(ws)  # the next online step after a seal made offline (a TSA named and in reach)
    return Issued(cert, record, path)


def certify_ca_key(
    ws: Workspace,
    *,
    subject_ca: str,
    issuer_ca: str,
    profile_name: str,
    approved_by: str,
    days: int | None = None,
    now: datetime | None = None,
) -> Issued:
    """Certify an existing CA's key and name under another CA: a root rollover's link certificates (each root's
    key under the other root, profile kind ``link-ca``) and the re-certification of an issuing CA under the new
    root. The subject and key are taken from ``subject_ca``'s certificate (a relying party builds the chain by
    that name and key identifier, so the subject must come out byte-identical); the certificate is an ordinary
    row of ``issuer_ca``'s (journalled ``certificate.issue``, file under its certificates folder), checked and
    signed as every certificate is. ``subject_ca``'s own record is unchanged.

    Raises:
        InputError: the profile is not a link or issuing-CA profile, or ``issuer_ca`` may not issue under it.
        StateError: the subject cannot be rebuilt byte-identical under the profile.
    """
    check_person(approved_by, "approved-by")
    if now is None:
        ws.journal.check_clock()
    profile = get_profile(profile_name, ws.config.oids)
    if profile.rules.kind not in ("link-ca", "issuing-ca"):
        raise InputError(f"profile {profile_name} is a {profile.rules.kind} profile; a CA key is certified under a "
                         "link-ca or issuing-ca profile")  # fmt: skip
    subject_cert = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(subject_ca))
    parent, issuer_cert, signer = issuer_of(ws, issuer_ca)
    if parent.profile not in profile.rules.issued_by:
        raise InputError(
            f"profile {profile_name} must be issued by {', '.join(profile.rules.issued_by)}, not by CA {issuer_ca} "
            f"({parent.profile})"
        )
    cn = subject_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    ou = subject_cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    identity = Identity(role=str(ou[0].value) if ou else None, name=str(cn[0].value) if cn else None)
    now = now or ws.clock.now()
    issuer = Issuer(issuer_cert.subject, key_identifier(issuer_cert.public_key()), issuer_cert.not_valid_after_utc)  # type: ignore[arg-type]
    serial = new_serial(ws, issuer_ca)
    builder = build_tbs(identity, subject_cert.public_key(), profile, issuer, serial, now, days=days)  # type: ignore[arg-type]
    if builder._subject_name is None or builder._subject_name.public_bytes() != subject_cert.subject.public_bytes():
        raise StateError(
            f"profile {profile_name} does not rebuild {subject_ca}'s subject byte for byte "
            f"({subject_cert.subject.rfc4514_string()}); a chain could not be built through it"
        )
    cert = sign_checked(builder, profile, signer, issuer_cert, on_discard=_discarder(ws, issuer_ca, profile_name,
                                                                                   approved_by))  # fmt: skip
    artifact = f"{certificates_dir(issuer_ca)}{serial_hex(serial)}.pem"
    record = _record(
        cert,
        issuer_ca=issuer_ca,
        profile=profile_name,
        identity=identity,
        approved_by=approved_by,
        csr_sha256=None,
        key_store=None,
        artifact=artifact,
        now=now,
    )
    path = _store_issued(ws, cert, record, extra={"certifies_ca": subject_ca})
    return Issued(cert, record, path)


def _store_issued(
    ws: Workspace,
    cert: x509.Certificate,
    record: CertificateRecord,
    *,
    extra: dict[str, object],
    csr: bytes | None = None,
) -> Path:
    """Row, write-once artifact and journal line of an end-entity certificate, in one transaction under the
    CA's lock, with the CSR it was issued from (``csr``, DER: archived under ``record.csr_sha256``, for a later
    re-certification). The row goes in first: the one-valid-certificate-per-identity claim refuses a run that lost a
    race before its file exists. A process killed after the file is written and before the commit leaves a
    file without a row, which the next command of this CA recovers (:func:`~ceremony.issue.signing.issuer_of`);
    its CSR is not archived then (the recovery has only the file)."""
    assert record.artifact is not None
    path = ws.root / record.artifact
    with ws.inventory.transaction() as db:
        ws.inventory.lock_ca(db, record.issuer_ca)
        ws.inventory.add_certificate(db, record, claim="first")
        if csr is not None and ws.inventory.archive_csr(db, csr) != record.csr_sha256:
            raise StateError(f"the CSR archived for serial {record.serial} is not the one it was issued from")
        digest = write_once(path, cert.public_bytes(serialization.Encoding.PEM))
        crash_point("issue.written")
        ws.journal.append(_stored_event(CertificateStored, record, digest, extra))
        crash_point("issue.journaled")
    crash_point("issue.recorded")
    return path


def _check_identity_shape(profile: ResolvedProfile, identity: Identity) -> None:
    kind = profile.rules.kind
    if identity.eui64 is None:
        raise InputError(f"profile {profile.name} needs --eui64")
    if identity.usage not in ("ds", "ka"):
        raise InputError(f"profile {profile.name} needs --usage ds or ka")
    if kind == "device" and (identity.role or identity.name):
        raise InputError("device certificates have an empty subject: --role and --name are not allowed")
    if kind == "organisation":
        if identity.role is None:
            raise InputError(f"profile {profile.name} needs --role")
        allowed = profile.rules.subject.roles
        if identity.role not in allowed:
            raise InputError(f"role {identity.role} is not allowed for {profile.name} (allowed: {', '.join(allowed)})")
