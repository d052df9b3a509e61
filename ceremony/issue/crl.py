"""CRLs and ARLs (DOMAIN.md profile E), encoded directly: entries DER-encoded in one pass, the TBS signed.

``CertificateRevocationListBuilder.add_revoked_certificate`` in a loop is quadratic (100k entries
took 42 s that way), and even the constructor path builds a Python object per entry. Here each
entry is a few byte concatenations; ``tests/test_crl_publish.py`` proves the bytes equal the builder's.
An issuing CA publishes a CRL of end-entity certificates; the root publishes an ARL of CA
certificates. cRLNumber strictly increases per CA; thisUpdate/nextUpdate come from the policy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError
from ceremony.faults import crash_point
from ceremony.fs import read_regular, write_once
from ceremony.issue.recovery import issuer_of
from ceremony.issue.revocation import REASON_CODES
from ceremony.lint.certificate import check_crl
from ceremony.lint.findings import failing
from ceremony.model.events import CrlPublish, CrlRecover
from ceremony.model.people import check_role, operator, workspace_register
from ceremony.model.policy import load_policy
from ceremony.model.tbs import key_identifier
from ceremony.model.template import ECDSA_WITH_SHA256, der_length
from ceremony.record.checkpoints import write_checkpoint
from ceremony.record.crls import CRLRecord, add_crl, last_crl
from ceremony.record.revocations import crl_entries, revocation_count
from ceremony.record.timestamps import stamp_pending
from ceremony.record.workspace import Workspace

#: A CRL file found unrecorded is read up to this size (a CRL of a million entries is some 40 MB).
CRL_FILE_LIMIT = 256 << 20
_CRL_REASON_OID = bytes.fromhex("0603551d15")  # 2.5.29.21
_CRL_NUMBER_OID = bytes.fromhex("0603551d14")  # 2.5.29.20
_AKI_OID = bytes.fromhex("0603551d23")  # 2.5.29.35


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def _integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # one more octet than needed keeps it positive
    while len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return _tlv(0x02, body)


def _time(when: datetime) -> bytes:
    """RFC 5280 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050."""
    when = when.astimezone(timezone.utc)
    if when.year < 2050:
        return _tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


def _reason_extensions(code: int) -> bytes:
    # Extensions ::= SEQUENCE OF Extension { extnID reasonCode, extnValue OCTET STRING { ENUMERATED } }
    return _tlv(0x30, _tlv(0x30, _CRL_REASON_OID + _tlv(0x04, _tlv(0x0A, bytes([code])))))


def encode_entries(entries: Iterable[tuple[int, datetime, str]]) -> bytes:
    """revokedCertificates content: (serial, revocation time, reason name) each as one SEQUENCE."""
    times: dict[datetime, bytes] = {}
    reasons: dict[str, bytes] = {}
    out = []
    for serial, when, reason in entries:
        stamp = times.get(when)
        if stamp is None:
            stamp = times[when] = _time(when)
        extension = reasons.get(reason)
        if extension is None:
            extension = reasons[reason] = b"" if reason == "unspecified" else _reason_extensions(REASON_CODES[reason])
        out.append(_tlv(0x30, _integer(serial) + stamp + extension))
    return b"".join(out)


def encode_tbs(
    issuer: x509.Name,
    authority_key_id: bytes,
    number: int,
    this_update: datetime,
    next_update: datetime,
    entries_der: bytes,
) -> bytes:
    """TBSCertList v2: ecdsa-with-SHA256, issuer as the CA's subject bytes, times, entries, then the
    extensions in the order the workbench adds them (authorityKeyIdentifier, cRLNumber)."""
    aki = _tlv(0x30, _AKI_OID + _tlv(0x04, _tlv(0x30, _tlv(0x80, authority_key_id))))
    crl_number = _tlv(0x30, _CRL_NUMBER_OID + _tlv(0x04, _integer(number)))
    body = (
        _integer(1)
        + ECDSA_WITH_SHA256
        + issuer.public_bytes()
        + _time(this_update)
        + _time(next_update)
        + (_tlv(0x30, entries_der) if entries_der else b"")
        + _tlv(0xA0, _tlv(0x30, aki + crl_number))
    )
    return _tlv(0x30, body)


def builder_crl(
    issuer: x509.Name,
    authority_key_id: bytes,
    number: int,
    this_update: datetime,
    next_update: datetime,
    entries: list[tuple[int, datetime, str]],
    key: ec.EllipticCurvePrivateKey,
) -> x509.CertificateRevocationList:
    """The same CRL through cryptography's builder (the reference the direct encoding is tested against)."""
    revoked = []
    for serial, when, reason in entries:
        item = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason != "unspecified":
            item = item.add_extension(x509.CRLReason(x509.ReasonFlags[_FLAG[reason]]), critical=False)
        revoked.append(item.build())
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer, last_update=this_update, next_update=next_update, revoked_certificates=revoked
    )
    builder = builder.add_extension(x509.AuthorityKeyIdentifier(authority_key_id, None, None), critical=False)
    builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    return builder.sign(key, hashes.SHA256())


_FLAG = {
    "keyCompromise": "key_compromise",
    "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "certificateHold": "certificate_hold",
    "privilegeWithdrawn": "privilege_withdrawn",
    "aACompromise": "aa_compromise",
}


def sign_crl(tbs: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + ECDSA_WITH_SHA256 + _tlv(0x03, b"\x00" + signature))


@dataclass(frozen=True)
class Published:
    ca: str
    kind: str
    number: int
    entries: int
    this_update: datetime
    next_update: datetime
    path: Path
    sha256: str


def _refuse_planted(ws: Workspace, relative: str) -> None:
    """Refuse, before anything is signed, a symbolic link (or anything but a regular file) at the next CRL's
    path or at a directory on the way to it: a link is never followed (DESIGN.md principle 9)."""
    path, parts = ws.root, Path(relative).parts
    for depth, part in enumerate(parts, start=1):
        path = path / part
        if os.path.islink(path):
            what = "the next CRL" if depth == len(parts) else "a CRL directory"
            raise StateError(
                f"{path} is a symbolic link where {what} belongs; nothing was signed: remove the link and run "
                "`ceremony crl` again"
            )
    if os.path.lexists(path) and not os.path.isfile(path):
        raise StateError(f"{path} is not a regular file where the next CRL belongs; nothing was signed: remove it")


def _recover(ws: Workspace, ca_name: str, kind: str, number: int, ca_cert: x509.Certificate) -> None:
    relative = f"artifacts/crls/{ca_name}-{number}.{kind}"
    data = read_regular(ws.root / relative, CRL_FILE_LIMIT, "CRL")
    try:
        crl = x509.load_der_x509_crl(data)
        signed = crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
        recorded_number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (ValueError, x509.ExtensionNotFound):
        signed, recorded_number = False, None
    if not signed or recorded_number != number:
        raise StateError(f"{relative} is not recorded and is not {ca_name}'s CRL number {number}: check it by hand")
    digest = hashlib.sha256(data).hexdigest()
    with ws.inventory.transaction() as db:
        add_crl(
            db,
            CRLRecord(ca_name, number, kind, crl.last_update_utc.isoformat(), crl.next_update_utc.isoformat(),  # type: ignore[union-attr]
                      len(crl), digest, relative),
        )  # fmt: skip
        ws.journal.append(
            CrlRecover(
                actor=operator(),
                ca=ca_name,
                kind=kind,
                number=number,
                outputs={relative: digest},
                why="written but not recorded (the publishing process was interrupted)",
            ),
        )


def publish_crl(ws: Workspace, ca_name: str, *, by: str, now: datetime | None = None) -> Published:
    """Build, sign, verify and lint the next CRL (issuing CA) or ARL (root) and record it.

    ``by`` is the operator who publishes it: the workspace's participant register must name them for the
    ``operator`` role (checked before anything is read or signed); the journal's entry records them.
    """
    check_role(workspace_register(ws.root), by, "operator", "--by")
    if now is None:
        ws.journal.check_clock()
    ca, ca_cert, key = issuer_of(ws, ca_name)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"CA {ca_name}'s key is not an EC key; profile E signs ecdsa-with-SHA256")
    policy = load_policy().revocation
    kind = "arl" if ca.role == "root" else "crl"
    this_update = (now or ws.clock.now()).astimezone(timezone.utc).replace(microsecond=0)
    period = (
        timedelta(days=policy.arl_next_update_days) if kind == "arl" else timedelta(hours=policy.crl_next_update_hours)
    )
    next_update = this_update + period
    last = last_crl(ws.inventory, ca_name)
    number = last.number + 1
    # A crash between writing a CRL and recording it leaves a signed file the inventory does not know:
    # it is recorded now (it was signed by this CA, whoever saw it), and its number stays spent.
    while os.path.lexists(ws.root / f"artifacts/crls/{ca_name}-{number}.{kind}"):
        _refuse_planted(ws, f"artifacts/crls/{ca_name}-{number}.{kind}")
        _recover(ws, ca_name, kind, number, ca_cert)
        number += 1
    _refuse_planted(ws, f"artifacts/crls/{ca_name}-{number}.{kind}")
    if last.this_update is not None and this_update.isoformat() < last.this_update:
        raise StateError(
            f"the clock says {this_update.isoformat()}, before the last CRL of {ca_name} ({last.this_update})"
        )
    rows = crl_entries(ws.inventory, ca_name)
    parsed: dict[str, datetime] = {}

    def entries() -> Iterable[tuple[int, datetime, str]]:
        for serial, revoked_at, reason in rows:
            when = parsed.get(revoked_at)
            if when is None:
                when = parsed[revoked_at] = datetime.fromisoformat(revoked_at)
            yield int(serial, 16), when, reason

    entries_der = encode_entries(entries())
    count = revocation_count(ws.inventory, ca_name)
    tbs = encode_tbs(
        ca_cert.subject,
        key_identifier(ca_cert.public_key()),  # type: ignore[arg-type]
        number,
        this_update,
        next_update,
        entries_der,
    )
    der = sign_crl(tbs, key)
    problems = failing(check_crl(der, issuer=ca_cert, subject=f"{kind} {number} of {ca_name}"))
    if problems:
        raise StateError(f"the {kind.upper()} failed its checks and was not published: {problems[0]}")
    relative = f"artifacts/crls/{ca_name}-{number}.{kind}"
    crash_point("crl.signed")
    digest = write_once(ws.root / relative, der)
    crash_point("crl.written")
    with ws.inventory.transaction() as db:
        record = CRLRecord(
            ca_name, number, kind, this_update.isoformat(), next_update.isoformat(), count, digest, relative
        )
        add_crl(db, record)
        ws.journal.append(
            CrlPublish(
                actor=operator(),
                by=by,
                ca=ca_name,
                kind=kind,
                number=number,
                entries=count,
                this_update=this_update.isoformat(),
                next_update=next_update.isoformat(),
                outputs={relative: digest},
            ),
        )
        crash_point("crl.journaled")
    crash_point("crl.recorded")
    write_checkpoint(
        ws.journal,
        key,
        key_label=ca.key_label,
        reason=f"{kind} {ca_name} #{number} published",
        anchors={relative: digest},
    )
    stamp_pending(ws)  # this checkpoint and what earlier offline steps left unstamped (a TSA named and in reach)
    return Published(ca_name, kind, number, count, this_update, next_update, ws.root / relative, digest)
