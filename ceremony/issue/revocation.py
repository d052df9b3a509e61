"""Revocation: by serial or by EUI-64, with an RFC 5280 reason, a requester and an approver, on record.

Every revocation needs two different people of the participant register: one who asks and an approver
who approves, whatever the reason and whether the certificate is a device's or a CA's. Revocations become
CRL entries (crl.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ceremony.errors import InputError, StateError
from ceremony.faults import crash_point
from ceremony.issue.recovery import recover
from ceremony.model.csr import normalise_eui64
from ceremony.model.events import CertificateRevoke
from ceremony.model.people import check_role, operator, workspace_register
from ceremony.model.policy import load_policy
from ceremony.record.revocations import (
    RevocationRecord,
    add_revocation,
    claim_valid,
)
from ceremony.record.workspace import Workspace

#: RFC 5280 5.3.1 CRLReason codes.
REASON_CODES = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


@dataclass(frozen=True)
class Revoked:
    issuer_ca: str
    serial: str
    profile: str
    eui64: str | None
    usage: str | None
    reason: str
    revoked_at: str


def revoke(
    ws: Workspace,
    *,
    ca_name: str,
    reason: str,
    requested_by: str,
    approved_by: str,
    serial: str | None = None,
    eui64: str | None = None,
    usage: str | None = None,
    now: datetime | None = None,
) -> list[Revoked]:
    """Revoke one certificate by serial, or every valid one of an EUI-64 (optionally one usage).

    ``requested_by`` must be in the workspace's participant register, and ``approved_by`` registered for the
    ``approver`` role and another person (checked before anything else is read).
    """
    register = workspace_register(ws.root)
    check_role(register, requested_by, None, "--requested-by")
    if requested_by == approved_by:
        raise InputError(
            f"a revocation needs two people: --requested-by and --approved-by must differ (both {approved_by})"
        )
    check_role(register, approved_by, "approver", "--approved-by")
    allowed = load_policy().revocation
    if reason not in allowed.reasons:
        raise InputError(f"--reason must be one of {', '.join(allowed.reasons)} (got {reason!r})")
    ws.inventory.ca(ca_name)  # an unknown CA is refused, naming the known ones
    recover(ws, ca_name)
    if (serial is None) == (eui64 is None):
        raise InputError("give a SERIAL or --eui64, not both")
    if usage is not None and eui64 is None:
        raise InputError("--usage goes with --eui64")
    if serial is not None:
        wanted = serial.upper().removeprefix("0X").replace(":", "")
        found = ws.inventory.certificate(ca_name, wanted.rjust(32, "0"))
        if found is None:
            raise InputError(f"CA {ca_name} issued no certificate with serial {serial}")
        if found.status != "valid":
            raise StateError(f"certificate {found.serial} from {ca_name} is already {found.status}")
        rows = [found]
    else:
        assert eui64 is not None
        value = normalise_eui64(eui64)
        rows = ws.inventory.valid_certificates_of_device(ca_name, value, usage)
        if not rows:
            raise InputError(
                f"CA {ca_name} has no valid certificate for EUI-64 {value}" + (f" {usage}" if usage else "")
            )
    when = (now or ws.clock.now()).astimezone(timezone.utc).replace(microsecond=0).isoformat()
    done = [Revoked(ca_name, r.serial, r.profile, r.eui64, r.usage, reason, when) for r in rows]
    crash_point("revoke.checked")
    with ws.inventory.transaction() as db:
        ws.inventory.lock_ca(db, ca_name)
        for item in done:
            claim_valid(db, ca_name, item.serial)
            add_revocation(db, RevocationRecord(ca_name, item.serial, reason, when, requested_by, approved_by))
        ws.journal.append(
            CertificateRevoke(
                actor=operator(),
                ca=ca_name,
                serials=[item.serial for item in done],
                eui64=done[0].eui64 if eui64 is not None else None,
                reason=reason,
                requested_by=requested_by,
                approved_by=approved_by,
                revoked_at=when,
            ),
        )
        crash_point("revoke.journaled")
    crash_point("revoke.recorded")
    return done
