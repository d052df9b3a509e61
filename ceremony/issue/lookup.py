"""`ceremony inventory show`: everything the inventory knows about one certificate or one device."""

from __future__ import annotations

import re
from typing import Any

from ceremony.errors import InputError
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


def _describe(ws: Workspace, row: dict[str, Any]) -> list[str]:
    lines = [f"certificate {row['serial']} from {row['issuer_ca']} (CA chain: {_lineage(ws, row['issuer_ca'])})"]
    lines += [f"  {field:<14} {row[field]}" for field in _FIELDS if row.get(field) not in (None, "")]
    revoked = ws.inventory.execute(
        "SELECT reason, revoked_at, requested_by, approved_by FROM revocations WHERE issuer_ca = ? AND serial = ?",
        (row["issuer_ca"], row["serial"]),
    ).fetchone()
    if revoked is not None:
        lines.append(f"  {'revoked':<14} {revoked[1]} ({revoked[0]}; asked by {revoked[2]}, approved by {revoked[3]})")
    return lines


def show(ws: Workspace, what: str) -> list[str]:
    """Lines describing a certificate (by serial) or a device (by EUI-64: every certificate, both usages)."""
    text = what.strip().upper().replace(":", "")
    columns = "serial, issuer_ca, eui64, " + ", ".join(_FIELDS)
    if re.fullmatch(r"[0-9A-F]{16}", text):
        rows = ws.inventory.execute(
            f"SELECT {columns} FROM certificates WHERE eui64 = ? ORDER BY usage, issued_at",  # noqa: S608
            (text,),  # noqa: S608
        ).fetchall()
        if rows:
            usages = {r.usage for r in rows if r.status == "valid"}
            missing = sorted({"ds", "ka"} - usages)
            head = [
                f"device {text}: {len(rows)} certificate(s)" + (f"; no valid {', '.join(missing)}" if missing else "")
            ]
            return head + [line for r in rows for line in _describe(ws, dict(r._mapping))]
    if re.fullmatch(r"[0-9A-F]{1,40}", text):
        rows = ws.inventory.execute(
            f"SELECT {columns} FROM certificates WHERE serial = ?",  # noqa: S608
            (text.rjust(32, "0"),),  # noqa: S608
        ).fetchall()
        if rows:
            return [line for r in rows for line in _describe(ws, dict(r._mapping))]
    raise InputError(f"no certificate with serial {what} and no device with EUI-64 {what} in the inventory")
