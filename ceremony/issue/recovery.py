"""What an interrupted command left unrecorded, recorded before the next one starts; and the issuer every
command of a CA starts from, after that recovery.

Single issuance writes a certificate file and a revocation writes its journal line inside the transaction
that records them: a process killed in between leaves a file without a row, or a journal line without its
commit. The next command that touches the CA (issue, a batch, revoke, crl) reconciles both first
(:func:`issuer_of`), so every command starts from records that agree (issue J).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from ceremony.errors import CeremonyError, StateError
from ceremony.fs import read_regular
from ceremony.issue.importer import _fields  # the importer's reading of a certificate's identity columns
from ceremony.issue.signing import certificate_record, certificates_dir
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.algorithms import CAPrivateKey
from ceremony.model.der import serial_hex
from ceremony.model.events import CertificateRecover, Event, RevocationRecover
from ceremony.model.people import operator
from ceremony.model.profiles import available_profiles, get_profile
from ceremony.model.tbs import Identity, key_identifier
from ceremony.record.inventory import CARecord, Inventory
from ceremony.record.revocations import RevocationRecord, journalled_revocations, restore_revocation, revoked_serials
from ceremony.record.workspace import Workspace


def issuer_of(ws: Workspace, ca_name: str) -> tuple[CARecord, x509.Certificate, CAPrivateKey]:
    """The CA's record, certificate and signing key, after recovering what an interrupted command of this CA
    left unrecorded (:func:`recover_certificates`, :func:`reconcile_revocations`):
    every command that touches a CA (issue, a batch, revoke, crl) starts from records that agree."""
    ca = ws.inventory.ca(ca_name)
    cert = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(ca_name))
    recover_certificates(ws, ca_name, cert)
    reconcile_revocations(ws, ca_name)
    if ca.key_store != ws.config.key_store.kind:
        raise StateError(
            f"CA {ca_name!r} key is in a {ca.key_store} store; this workspace uses {ws.config.key_store.kind}"
        )
    ws.refuse_destroyed(ca.key_label)
    return ca, cert, ws.key_store.load(ca.key_label)


#: Revocation reasons that end a CA's issuing whatever else certifies its key (RFC 5280 5.3.1).
_COMPROMISED = ("keyCompromise", "cACompromise")


def refuse_succeeded(ws: Workspace, ca_name: str) -> None:
    """Refuse new end-entity certificates from a CA that may not issue any more:

    - its certificate is revoked for a compromise, or revoked and no other valid certificate certifies its key
      (a root rollover supersedes an issuing CA's certificate under the old root once the new root has
      re-certified the same key and name);
    - its successor's overlap has ended: it signs CRLs for what it issued (for as long as any of it is valid),
      and nothing new (issue M: new issuance moves to the successor).
    """
    from ceremony.record.revocations import revocation

    ca = ws.inventory.ca(ca_name)
    own = ws.inventory.certificate(ca.issuer_ca, ca.serial) if ca.issuer_ca else None
    if own is not None and own.status != "valid":
        revoked = revocation(ws.inventory, own.issuer_ca, own.serial)
        reason = revoked.reason if revoked else own.status
        others = [c for c in ws.inventory.valid_certificates_of_key(own.ski) if c.profile == own.profile]
        if reason in _COMPROMISED or not others:
            when = f" on {revoked.revoked_at[:10]}" if revoked else ""
            raise StateError(
                f"CA {ca_name}'s certificate was revoked ({reason}){when}: it issues nothing more"
                + (
                    "; its compromise is answered by re-certifying its devices under another CA"
                    if reason in _COMPROMISED
                    else ""
                )  # fmt: skip
            )
    succession = ws.inventory.succession(ca_name)
    if succession is None:
        return
    until = datetime.fromisoformat(succession.issues_until)
    if ws.clock.now() > until:
        raise StateError(
            f"CA {ca_name} was succeeded by {succession.successor} ({succession.ceremony_id}); its overlap ended "
            f"{until:%Y-%m-%d %H:%MZ}: it issues nothing new (it still signs CRLs); issue from {succession.successor}"
        )


def recover(ws: Workspace, ca_name: str) -> None:
    """What an interrupted issuance or revocation of this CA left unrecorded, recorded before anything else."""
    reconcile_revocations(ws, ca_name)
    recover_certificates(ws, ca_name, x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(ca_name)))


#: The approver a recovered certificate is recorded with when its run died before its journal line.
UNRECORDED_APPROVER = "unrecorded"
_CERTIFICATE_LIMIT = 64 * 1024


def recover_certificates(ws: Workspace, ca_name: str, ca_cert: x509.Certificate) -> list[str]:
    """Record the certificate files of ``ca_name`` that an issuance killed before its commit left behind.

    Single issuance writes ``artifacts/certificates/<ca>/<serial>.pem`` inside the transaction that records
    it, under the CA's lock (:meth:`~ceremony.record.inventory.Inventory.lock_ca`): a file without a row is one
    whose process died. Such a file is verified (a certificate named by its serial, issued under this CA's
    name, its authorityKeyIdentifier this CA's key, its signature verifying with this CA's public key) and
    recorded, journalled as ``certificate.recover``: it was signed by this CA, so it must be on record to be
    revocable. Its approval, profile and CSR digest come from the dead run's ``certificate.issue`` line when it
    wrote one; otherwise the approver is :data:`UNRECORDED_APPROVER` (a finding for the assessor) and the
    profile the one it passes. Returns the serials recovered.

    Raises:
        StateError: a file there is not such a certificate (it is left where it is, for a person to check).
    """
    folder = ws.root / certificates_dir(ca_name)
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir())
    prefix = certificates_dir(ca_name)
    if not set(prefix + n for n in names) - ws.inventory.recorded_artifacts(ca_name, prefix):
        return []
    recovered: list[str] = []
    with ws.inventory.transaction() as db:
        ws.inventory.lock_ca(db, ca_name)  # no issuance of this CA is between its file and its commit now
        for relative in sorted(set(prefix + n for n in names) - ws.inventory.recorded_artifacts(ca_name, prefix)):
            if relative.endswith(".partial"):
                continue
            serial = _recover_one(ws, db, ca_name, ca_cert, relative)
            if serial is not None:
                recovered.append(serial)
    return recovered


def _recover_one(ws: Workspace, db: Inventory, ca_name: str, ca_cert: x509.Certificate, relative: str) -> str | None:
    refused = StateError(f"{relative} is not recorded and is not a certificate of CA {ca_name}: check it by hand")
    try:
        data = read_regular(ws.root / relative, _CERTIFICATE_LIMIT, "certificate")
        cert = x509.load_pem_x509_certificate(data)
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        cert.verify_directly_issued_by(ca_cert)
    except (CeremonyError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
        raise refused from exc
    serial = serial_hex(cert.serial_number)
    if relative.rsplit("/", 1)[-1] != f"{serial}.pem" or aki != key_identifier(ca_cert.public_key()):  # type: ignore[arg-type]
        raise refused
    if ws.inventory.serial_exists(ca_name, serial):
        raise StateError(f"{relative} is not recorded, but {ca_name} serial {serial} is another file: check it by hand")
    der = cert.public_bytes(serialization.Encoding.DER)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    fields = _fields(der, relative)
    line = _issue_line(ws, ca_name, fingerprint)
    profile = str(line["profile"]) if line else _profile_of(ws, ca_name, der, ca_cert)
    if profile is None:
        raise StateError(f"{relative} is not recorded and passes no profile CA {ca_name} issues: check it by hand")
    identity = Identity(eui64=fields["eui64"], usage=fields["usage"], role=fields["role"], name=fields["name"])
    approved_by = str(line["approved_by"]) if line else UNRECORDED_APPROVER
    record = certificate_record(
        cert, issuer_ca=ca_name, profile=profile, identity=identity, approved_by=approved_by,
        csr_sha256=line.get("csr_sha256") if line else None, key_store=None, artifact=relative, now=ws.clock.now(),
    )  # fmt: skip
    taken = bool(identity.eui64 and identity.usage) and bool(
        ws.inventory.valid_for_identity(ca_name, profile, identity.eui64 or "", identity.usage or "", identity.role)
    )
    ws.inventory.add_certificate(db, record, claim="next")
    why = (
        "written but not recorded (the issuing process was interrupted)"
        + (
            "; its journal line names the approval"
            if line
            else "; it died before its journal line: approval not on record"
        )
        + ("; the identity holds another valid certificate now: revoke one" if taken else "")
    )
    ws.journal.append(
        CertificateRecover(
            actor=operator(), ca=ca_name, serial=serial, fingerprint=fingerprint, profile=profile,
            eui64=identity.eui64, usage=identity.usage, approved_by=approved_by, why=why,
            outputs={relative: hashlib.sha256(data).hexdigest()},
        ),
    )  # fmt: skip
    return serial


def _issue_line(ws: Workspace, ca_name: str, fingerprint: str) -> dict[str, Any] | None:
    """The journal's ``certificate.issue`` line of this certificate, when its run wrote one before it died."""
    for entry in ws.journal.entries():
        if entry["event"] == Event.CERTIFICATE_ISSUE and entry.get("fingerprint") == fingerprint:
            return entry if entry.get("ca") == ca_name else None
    return None


def _profile_of(ws: Workspace, ca_name: str, der: bytes, ca_cert: x509.Certificate) -> str | None:
    """The one end-entity profile CA ``ca_name`` may issue that this certificate passes, or None."""
    ca_profile = ws.inventory.ca(ca_name).profile
    passing = []
    for name in sorted(available_profiles()):
        profile = get_profile(name, ws.config.oids)
        if profile.rules.is_ca or ca_profile not in profile.rules.issued_by:
            continue
        if not failing(check_certificate(der, profile, issuer=ca_cert)):
            passing.append(name)
    return passing[0] if len(passing) == 1 else None


def reconcile_revocations(ws: Workspace, ca_name: str) -> list[str]:
    """Bring the inventory to what the journal says of ``ca_name``'s revocations; returns the serials applied.

    A revocation's journal line is written inside the transaction that records it, just before the commit: a
    process killed between the two leaves the journal saying revoked and the inventory saying valid. The
    journal line is the approved request, on record with who asked and who approved (and revoking is the
    safe direction), so the next command that touches the CA applies it, with the line's reason and time,
    and journals a ``revocation.recover`` naming the line's ``seq``. Nothing else changes.

    Raises:
        StateError: the journal revokes a certificate the inventory does not hold (check it by hand).
    """
    if not _unreconciled(ws, ca_name):
        return []
    applied: list[str] = []
    with ws.inventory.transaction() as db:
        ws.inventory.lock_ca(db, ca_name)  # no revocation of this CA is between its journal line and its commit
        for entry, serials in _unreconciled(ws, ca_name):
            record = RevocationRecord(
                ca_name, "", entry["reason"], entry["revoked_at"], entry["requested_by"], entry["approved_by"]
            )
            for serial in serials:
                if not restore_revocation(db, replace(record, serial=serial)):
                    raise StateError(
                        f"the journal (entry {entry['seq']}) revokes {ca_name} serial {serial}, which the inventory "
                        "does not hold: check it by hand"
                    )
            ws.journal.append(
                RevocationRecover(
                    actor=operator(), ca=ca_name, serials=serials, reason=entry["reason"],
                    revoked_at=entry["revoked_at"], revoke_seq=int(entry["seq"]),
                    why="journalled but not committed (the revoking process was interrupted)",
                ),
            )  # fmt: skip
            applied += serials
    return applied


def _unreconciled(ws: Workspace, ca_name: str) -> list[tuple[dict[str, Any], list[str]]]:
    """The journal's revocations of ``ca_name`` the inventory lacks: (entry, the serials it lacks)."""
    entries = journalled_revocations(ws.journal.path, ca_name)
    if not entries:
        return []
    revoked = revoked_serials(ws.inventory, ca_name)
    missing = [(e, [s for s in e["serials"] if s not in revoked]) for e in entries]
    return [(e, serials) for e, serials in missing if serials]
