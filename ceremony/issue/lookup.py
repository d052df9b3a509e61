"""`ceremony inventory show`: everything the inventory knows about one certificate or one device."""

from __future__ import annotations

import re

from ceremony.errors import InputError
from ceremony.record.inventory import CertificateRecord
from ceremony.record.revocations import revocation
from ceremony.record.workspace import Workspace

_FIELDS = ("profile", "status", "usage", "role", "name", "subject", "not_before", "not_after", "key_algorithm",
           "key_size", "fingerprint", "approved_by", "batch_id", "ceremony_id", "issued_at")  # fmt: skip


def _lineage(ws: Workspace, ca_name: str) -> str:
    chain = []
    name: str | None = ca_name
    while name is not None and name not in chain:
        chain.append(name)
        name = ws.inventory.ca(name).issuer_ca
    return " <- ".join(chain)


def _describe(ws: Workspace, cert: CertificateRecord) -> list[str]:
    lines = [f"certificate {cert.serial} from {cert.issuer_ca} (CA chain: {_lineage(ws, cert.issuer_ca)})"]
    lines += [f"  {field:<14} {getattr(cert, field)}" for field in _FIELDS if getattr(cert, field) not in (None, "")]
    revoked = revocation(ws.inventory, cert.issuer_ca, cert.serial)
    if revoked is not None:
        lines.append(
            f"  {'revoked':<14} {revoked.revoked_at} ({revoked.reason}; asked by {revoked.requested_by}, "
            f"approved by {revoked.approved_by})"
        )
    return lines


def show(ws: Workspace, what: str) -> list[str]:
    """Lines describing a certificate (by serial) or a device (by EUI-64: every certificate, both usages)."""
    text = what.strip().upper().replace(":", "")
    if re.fullmatch(r"[0-9A-F]{16}", text):
        rows = ws.inventory.certificates_of_device(text)
        if rows:
            usages = {r.usage for r in rows if r.status == "valid"}
            missing = sorted({"ds", "ka"} - usages)
            head = [
                f"device {text}: {len(rows)} certificate(s)" + (f"; no valid {', '.join(missing)}" if missing else "")
            ]
            return head + [line for r in rows for line in _describe(ws, r)]
    if re.fullmatch(r"[0-9A-F]{1,40}", text):
        rows = ws.inventory.certificates_with_serial(text.rjust(32, "0"))
        if rows:
            return [line for r in rows for line in _describe(ws, r)]
    raise InputError(f"no certificate with serial {what} and no device with EUI-64 {what} in the inventory")
