"""What notebook 40 does and shows: the revocation its parameters ask for, then the CRL and the root's ARL."""

from __future__ import annotations

from ceremony.issue.crl import Published, publish_crl
from ceremony.issue.revocation import Revoked, revoke
from ceremony.record.workspace import Workspace

NOTHING_REVOKED = "nothing to revoke: publishing only"


def revoke_requested(
    ws: Workspace,
    *,
    ca: str,
    reason: str,
    requested_by: str,
    approved_by: str,
    serial: str | None = None,
    eui64: str | None = None,
    usage: str | None = None,
) -> list[Revoked]:
    """Revoke the serial, or every valid certificate of the EUI-64 (optionally one usage), the parameters name;
    with neither named, revoke nothing (the notebook then only publishes)."""
    if not serial and not eui64:
        return []
    return revoke(
        ws, ca_name=ca, serial=serial or None, eui64=eui64 or None, usage=usage or None, reason=reason,
        requested_by=requested_by, approved_by=approved_by,
    )  # fmt: skip


def revocation_lines(revoked: list[Revoked]) -> list[str]:
    """One line per revoked certificate, or one saying nothing was revoked."""
    if not revoked:
        return [NOTHING_REVOKED]
    return [
        f"revoked {r.serial} ({r.eui64} {r.usage}) from {r.issuer_ca}: {r.reason} at {r.revoked_at}" for r in revoked
    ]


def publish_lists(ws: Workspace, ca: str, *, by: str, arl: bool = True) -> list[Published]:
    """Publish ``ca``'s next CRL and, with ``arl`` and when ``ca`` has an issuer (the root), the root's next ARL,
    by the operator ``by`` (a registered operator)."""
    published = [publish_crl(ws, ca, by=by)]
    root = ws.inventory.ca(ca).issuer_ca
    if arl and root:
        published.append(publish_crl(ws, root, by=by))
    return published


def publication_lines(published: list[Published]) -> list[str]:
    """One line per published list: kind, number, CA, entries, thisUpdate and nextUpdate, size and SHA-256."""
    return [
        f"{p.kind.upper()} {p.number} of {p.ca}: {p.entries} entries, thisUpdate {p.this_update:%Y-%m-%d %H:%M:%S}Z, "
        f"nextUpdate {p.next_update:%Y-%m-%d %H:%M:%S}Z, {p.path.stat().st_size} bytes, sha256 {p.sha256[:16]}…"
        for p in published
    ]
