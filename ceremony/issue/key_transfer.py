"""The symmetric key inventory at work: listing, crypto-period flags, export and import under a transport KEK.

An exported key travels as a small JSON file: its label, algorithm and KCV, the KEK's label and
KCV, the mechanism, and the key wrapped under the KEK (RFC 5649). Importing unwraps into the
token and checks the KCV the token computes against the file's before the key is used; on a
mismatch the imported object is destroyed and nothing is recorded. Every wrap and unwrap is a
row of the wrapping lineage (``key_wraps``): which key travelled under which KEK, when.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path

from ceremony.errors import InputError, StateError, TokenError
from ceremony.fs import read_regular, write_once
from ceremony.model.events import KeyExport, KeyImport
from ceremony.model.people import operator
from ceremony.record.symmetric_keys import (
    KeyWrapRecord,
    SymmetricKeyRecord,
    add_key_wrap,
    add_symmetric_key,
    symmetric_key,
    symmetric_keys,
)
from ceremony.record.workspace import Workspace

#: RFC 5649 AES key wrap with padding, as the workspace's token numbers it.
_FORMAT = "s1spki-wrapped-key/1"
#: The largest wrapped-key file read: an export is a ~500-byte JSON object (a wrapped AES-256 key is 40 bytes).
MAX_WRAPPED_KEY_BYTES = 16 << 10
#: The fields an import reads, each a string (nothing nested: the file is one flat object).
_WRAPPED_FIELDS = ("format", "label", "algorithm", "purpose", "kcv", "kek_kcv", "wrapped")


@dataclass(frozen=True)
class KeyRow:
    label: str
    algorithm: str
    kcv: str
    kcv_method: str
    purpose: str
    state: str
    rotation_due: str
    expires_at: str
    wrapped_by: str | None
    serves: str


_KEY_ROW_FIELDS = tuple(f.name for f in fields(KeyRow))


def list_keys(ws: Workspace) -> list[KeyRow]:
    return [KeyRow(**{name: getattr(key, name) for name in _KEY_ROW_FIELDS}) for key in symmetric_keys(ws.inventory)]


def overdue(ws: Workspace, now: datetime | None = None) -> list[tuple[KeyRow, str]]:
    """Active keys past their rotation date or their crypto-period, with what is wrong."""
    when = (now or ws.clock.now()).isoformat()
    flagged = []
    for key in list_keys(ws):
        if key.state != "active":
            continue
        if key.expires_at <= when:
            flagged.append((key, f"past its crypto-period (expired {key.expires_at[:10]})"))
        elif key.rotation_due <= when:
            flagged.append((key, f"rotation due since {key.rotation_due[:10]}"))
    return flagged


def _key(ws: Workspace, label: str) -> SymmetricKeyRecord:
    row = symmetric_key(ws.inventory, label)
    if row is None:
        raise InputError(f"no symmetric key labelled {label!r} in the key inventory")
    return row


def _mechanism(ws: Workspace) -> int:
    return int(ws.config.key_store.wrap_mechanism or "0x210A", 16)


def export_key(
    ws: Workspace, label: str, kek_label: str, out: Path, *, direction: str = "export", ceremony_id: str | None = None
) -> str:
    """Write ``label`` wrapped under the transport KEK ``kek_label`` to ``out`` (write-once); returns its SHA-256."""
    key, kek = _key(ws, label), _key(ws, kek_label)
    if kek.purpose not in ("kek", "transport-kek"):
        raise InputError(f"{kek_label} is a {kek.purpose}, not a key-encryption key")
    for row in (key, kek):
        if row.state != "active":
            raise StateError(f"{row.label} is {row.state}; only active keys are used")
    if not key.wrapped_export:
        raise InputError(f"{label} was not declared for wrapped export")
    store = ws.key_store
    wrapped = store.wrap_secret(kek_label, label, _mechanism(ws))
    document = {
        "format": _FORMAT,
        "label": label,
        "algorithm": key.algorithm,
        "purpose": key.purpose,
        "kcv": key.kcv if key.kcv_method == "ecb" else store.secret_kcv(label),
        "kek_label": kek_label,
        "kek_kcv": store.secret_kcv(kek_label),
        "mechanism": ws.config.key_store.wrap_mechanism or "0x210A",
        "wrapped": wrapped.hex(),
    }
    digest = write_once(out, (json.dumps(document, indent=2) + "\n").encode())
    with ws.inventory.transaction() as db:
        when = ws.clock.now().isoformat()
        add_key_wrap(
            db,
            KeyWrapRecord(label, kek_label, direction, document["kcv"], document["kek_kcv"], str(out), digest, when,
                          ceremony_id),
        )  # fmt: skip
        ws.journal.append(
            KeyExport(actor=operator(), key=label, kek=kek_label, kcv=document["kcv"], outputs={str(out): digest}),
        )
    return digest


def import_key(ws: Workspace, path: Path, *, kek_label: str, serves: str, crypto_period_days: int,
               rotation_days: int, label: str | None = None) -> str:  # fmt: skip
    """Unwrap an exported key under the local copy of its transport KEK; the KCVs must match. Returns the KCV."""
    raw = read_regular(path, MAX_WRAPPED_KEY_BYTES, "wrapped-key file")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{path}: not a wrapped-key file ({type(exc).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise InputError(f"{path}: not a {_FORMAT} file")
    missing = [name for name in _WRAPPED_FIELDS if not isinstance(document.get(name), str)]
    if missing:
        raise InputError(f"{path}: {', '.join(missing)} must be given as text in a {_FORMAT} file")
    long = [name for name in _WRAPPED_FIELDS if name != "wrapped" and len(document[name]) > 64]
    if long:
        raise InputError(f"{path}: {', '.join(long)} over 64 characters; not a {_FORMAT} file")
    label = label or str(document["label"])
    kek = _key(ws, kek_label)
    store = ws.key_store
    if store.secret_kcv(kek_label) != document["kek_kcv"]:
        raise InputError(f"{path}: wrapped under a KEK with KCV {document['kek_kcv']}; {kek_label} has {kek.kcv}")
    purpose = "kek" if document["purpose"] in ("kek", "transport-kek") else "data"
    try:
        kcv = store.unwrap_secret(kek_label, label, bytes.fromhex(document["wrapped"]), _mechanism(ws), purpose=purpose)
    except (TokenError, ValueError) as exc:
        raise InputError(f"{path}: does not unwrap under {kek_label} (damaged or another KEK)") from exc
    if kcv != document["kcv"]:
        store.destroy_secret(label)
        raise InputError(f"{path}: the unwrapped key's KCV {kcv} is not the file's {document['kcv']}; nothing imported")
    now = ws.clock.now().replace(microsecond=0)
    digest = hashlib.sha256(raw).hexdigest()  # the bytes imported, not the file as it may be now
    with ws.inventory.transaction() as db:
        add_symmetric_key(
            db,
            SymmetricKeyRecord(
                label=label, token=ws.token_label or "", algorithm=document["algorithm"],
                length=128 if document["algorithm"] == "aes-128" else 256, kcv=kcv, kcv_method="ecb",
                purpose=document["purpose"], origin="unwrapped", state="active", created_at=now.isoformat(),
                activated_at=now.isoformat(), rotation_due=(now + timedelta(days=rotation_days)).isoformat(),
                expires_at=(now + timedelta(days=crypto_period_days)).isoformat(), wrapped_by=kek_label,
                predecessor=None, serves=serves, wrapped_export=0, ceremony_id=None,
            ),
        )  # fmt: skip
        add_key_wrap(
            db, KeyWrapRecord(label, kek_label, "import", kcv, document["kek_kcv"], str(path), digest, now.isoformat())
        )
        ws.journal.append(
            KeyImport(actor=operator(), key=label, kek=kek_label, kcv=kcv, inputs={str(path): digest}),
        )
    return kcv
