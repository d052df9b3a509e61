"""A synthetic inventory for scale tests: certificate rows with realistic shapes, and no signature per row.

Every row is labelled synthetic (approved_by ``synthetic``, DER ``SYNTHETIC…``), so no one mistakes
it for an estate. Shapes: 95% device certificates in DS/KA pairs (notAfter 9999-12-31), 5%
organisation certificates (5 years), issued over three years in batches of 10,000, 1% revoked
with policy reasons.

Two ways in: ``make_inventory`` inserts the rows into the workspace's database (the snapshot is then built from
it, as for any workspace: about 37 s per million rows); ``make_snapshot`` writes the same shapes straight into the
workspace's columnar certificates snapshot with Arrow (seconds per ten million rows), stamped as in step with the
database and labelled synthetic in its metadata, so that the views and notebook 70 read it through the workbench's
own code paths. The database then holds only the two CAs and their certificates.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ceremony.issue.single import create_ca
from ceremony.record import frames as fr
from ceremony.record.inventory import CERTIFICATE_COLUMNS
from ceremony.record.workspace import Purpose, Workspace, init_workspace

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
REASONS = ["superseded"] * 6 + ["cessationOfOperation"] * 3 + ["keyCompromise"]


def _two_cas(root: Path, purpose: Purpose) -> Workspace:
    """A new software workspace with a root and an issuing CA."""
    ws = init_workspace(root, key_store="software", purpose=purpose)
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Synthetic Root", approved_by="synthetic")
    create_ca(ws, "issuing", profile_name="ss1spca-issuing", common_name="Synthetic Issuing",
              approved_by="synthetic", issuer_ca="root")  # fmt: skip
    return ws


def make_inventory(root: Path, rows: int, *, seed: int = 7, purpose: Purpose = "test") -> Path:
    """A new software workspace with a root, an issuing CA and ``rows`` synthetic certificates."""
    ws = _two_cas(root, purpose)
    rng = random.Random(seed)  # noqa: S311 - synthetic shapes, not secrets
    span = (datetime(2026, 11, 1, tzinfo=timezone.utc) - START).total_seconds()
    issuer = "CN=Synthetic Issuing,OU=07"
    made = 0
    while made < rows:
        chunk, revocations = [], []
        for _ in range(min(50_000, rows - made)):
            n = made + len(chunk)
            issued = START + timedelta(seconds=span * n / rows + rng.random() * 60)
            device = rng.random() < 0.95
            serial = f"{rng.getrandbits(127) | 1 << 120:032X}"
            usage = "ds" if n % 2 == 0 else "ka"
            not_after = "9999-12-31T23:59:59+00:00" if device else (issued + timedelta(days=1826)).isoformat()
            revoked = rng.random() < 0.01
            values = {
                "serial": serial, "issuer_ca": "issuing", "issuer": issuer, "subject": "" if device else "CN=Org",
                "eui64": f"{0x00DB_0000_0000_0000 + n // 2:016X}", "role": None if device else "02", "usage": usage,
                "name": None, "profile": "ss1sp-device" if device else "ss1sp-organisation",
                "not_before": issued.isoformat(), "not_after": not_after, "key_algorithm": "ec-p256",
                "signature_algorithm": "ecdsa-with-SHA256", "policy_oids": "1.3.6.1.4.1.32473.1.1",
                "ski": f"{rng.getrandbits(64):016X}", "aki": "0123456789ABCDEF",
                "fingerprint": hashlib.sha256(serial.encode()).hexdigest(), "status": "revoked" if revoked else "valid",
                "approved_by": "synthetic", "csr_sha256": None, "key_store": None,
                "batch_id": f"synthetic-{n // 10_000}",
                "ceremony_id": None, "issued_at": issued.isoformat(), "artifact": None,
                "der": b"SYNTHETIC" + n.to_bytes(4, "big"), "key_size": 256,
            }  # fmt: skip
            chunk.append(tuple(values[c] for c in CERTIFICATE_COLUMNS))
            if revoked:
                when = (issued + timedelta(days=rng.randrange(1, 300))).isoformat()
                revocations.append(("issuing", serial, rng.choice(REASONS), when, "synthetic", "synthetic2"))
        with ws.inventory.transaction() as db:
            ws.inventory.add_certificate_rows(db, chunk)
            db._executemany("INSERT INTO revocations VALUES (?, ?, ?, ?, ?, ?)", revocations)
        made += len(chunk)
    ws.close()
    return root


#: Every synthetic snapshot says so in its schema's metadata (next to the generation it was stamped with).
LABEL = {"synthetic": "bench/synthetic.py: no certificate behind any row"}
BATCH = 100_000  # rows per record batch, as the workbench writes its own snapshots
_US = 1_000_000
_DAY_US = 86_400 * _US
_NEVER_US = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()) * _US
_VALUES = {  # every value a synthetic row takes in a categorical column: one dictionary for every batch
    "issuer_ca": ["issuing"], "issuer": ["CN=Synthetic Issuing,OU=07"], "role": ["02"], "usage": ["ds", "ka"],
    "profile": ["ss1sp-device", "ss1sp-organisation"], "key_algorithm": ["ec-p256"],
    "signature_algorithm": ["ecdsa-with-SHA256"], "policy_oids": ["1.3.6.1.4.1.32473.1.1"],
    "status": ["valid", "revoked"], "approved_by": ["synthetic"], "revocation_reason": sorted(set(REASONS)),
}  # fmt: skip


def _hex(octets: np.ndarray, digits: bytes = b"0123456789ABCDEF") -> pa.Array:
    """Each row of ``octets`` (n x k bytes) as 2k hex digits, built in one pass (no Python per row)."""
    table = np.frombuffer(digits, np.uint8)
    n, k = octets.shape
    chars = np.empty((n, 2 * k), np.uint8)
    chars[:, 0::2], chars[:, 1::2] = table[octets >> 4], table[octets & 15]
    offsets = np.arange(0, (n + 1) * 2 * k, 2 * k, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _text(codes: np.ndarray, values: list[str], mask: np.ndarray | None = None) -> pa.Array:
    """Text columns of few values, from each row's index into ``values``."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=mask), values).cast(pa.large_string())


def _encoded(codes: np.ndarray, encoding: tuple[pa.Array, np.ndarray], mask: np.ndarray | None = None) -> pa.Array:
    """A categorical column from each row's index into its synthetic values, against the column's one fixed
    dictionary (``encoding``: the dictionary, and where each synthetic value is in it; every batch shares it, so the
    file carries no dictionary deltas)."""
    dictionary, positions = encoding
    return pa.DictionaryArray.from_arrays(pa.array(positions[codes], pa.int32(), mask=mask), dictionary)


def _synthetic_batch(rng: np.random.Generator, first: int, n: int, rows: int, schema: pa.Schema,
                     encodings: dict[str, tuple[pa.Array, np.ndarray]]) -> pa.RecordBatch:  # fmt: skip
    """Synthetic rows ``first`` .. ``first + n - 1`` of ``rows``, in ``make_inventory``'s shapes."""
    index = np.arange(first, first + n, dtype=np.int64)
    start = int(START.timestamp()) * _US
    span = int((datetime(2026, 11, 1, tzinfo=timezone.utc) - START).total_seconds()) * _US
    issued = start + (index * (span / rows)).astype(np.int64) + rng.integers(0, 60 * _US, n)
    device, revoked = rng.random(n) < 0.95, rng.random(n) < 0.01
    serial = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    serial[:, 0] = (serial[:, 0] & 0x7F) | 0x01  # 127 bits, the top one set: like the workbench's serials
    ts = pa.timestamp("us", tz="UTC")
    zeros = np.zeros(n, np.int32)
    codes = {
        "issuer_ca": (zeros, None), "issuer": (zeros, None), "role": (zeros, device),
        "usage": (index % 2, None), "profile": (~device, None), "key_algorithm": (zeros, None),
        "signature_algorithm": (zeros, None), "policy_oids": (zeros, None), "status": (revoked, None),
        "approved_by": (zeros, None), "batch_id": (index // 10_000, None),
        "revocation_reason": (rng.choice([_VALUES["revocation_reason"].index(r) for r in REASONS], n), ~revoked),
    }  # fmt: skip
    columns = {
        **{c: _encoded(np.asarray(v, np.int64), encodings[c], mask) for c, (v, mask) in codes.items()},
        "serial": _hex(serial),
        "subject": _text(~device, ["", "CN=Org"]),
        "eui64": _hex((0x00DB_0000_0000_0000 + index // 2).astype(">u8").view(np.uint8).reshape(n, 8)),
        "name": pa.nulls(n, pa.large_string()),
        "not_before": pa.array(issued, ts),
        "not_after": pa.array(np.where(device, _NEVER_US, issued + 1826 * _DAY_US), ts),
        "key_size": pa.array(np.full(n, 256, np.int64)),
        "ski": _hex(rng.integers(0, 256, (n, 8), dtype=np.uint8)),
        "aki": _text(zeros, ["0123456789ABCDEF"]),
        "fingerprint": _hex(rng.integers(0, 256, (n, 32), dtype=np.uint8), b"0123456789abcdef"),
        "ceremony_id": pa.nulls(n, pa.large_string()),
        "issued_at": pa.array(issued, ts),
        "revoked_at": pa.array(issued + rng.integers(1, 300, n) * _DAY_US, ts, mask=~revoked),
    }
    return pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)


def _reencoded(column: pa.ChunkedArray, dictionary: pa.Array) -> pa.Array:
    """A real row's categorical column, against the synthetic rows' dictionary (which holds its values)."""
    text = column.cast(pa.large_string()).combine_chunks()
    return pa.DictionaryArray.from_arrays(pc.index_in(text, value_set=dictionary).cast(pa.int32()), dictionary)


def make_snapshot(root: Path, rows: int, *, seed: int = 7, purpose: Purpose = "test") -> Path:
    """A new software workspace with a root and an issuing CA (their certificates in its database), whose
    certificates snapshot holds those two and ``rows`` synthetic certificates written straight with Arrow."""
    ws = _two_cas(root, purpose)
    try:
        fr.certificates_frame(ws)  # the workbench writes its own snapshot of the real rows first
        path = ws.root / fr.SNAPSHOT
        with pa.memory_map(str(path)) as source:
            real = pa.ipc.open_file(source).read_all()
        schema = fr.snapshot_schema(ws, **LABEL)
        values = {**_VALUES, "batch_id": [f"synthetic-{b}" for b in range(rows // 10_000 + 1)]}
        dictionaries = {}
        for field in schema:
            if pa.types.is_dictionary(field.type):
                seen = [str(v) for v in pc.unique(real[field.name].cast(pa.large_string())).to_pylist() if v]
                dictionaries[field.name] = pa.array(dict.fromkeys(seen + values[field.name]), pa.string())
        encodings = {c: (d, pc.index_in(pa.array(values[c]), value_set=d).to_numpy(False).astype(np.int32))
                     for c, d in dictionaries.items()}  # fmt: skip
        head = [_reencoded(real[f.name], dictionaries[f.name]) if f.name in dictionaries
                else real[f.name].combine_chunks() for f in schema]  # fmt: skip
        rng = np.random.default_rng(seed)
        partial = path.with_name(path.name + ".partial")
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, schema, options=options) as writer:
            writer.write_batch(pa.RecordBatch.from_arrays(head, schema=schema))
            for first_row in range(0, rows, BATCH):
                writer.write_batch(_synthetic_batch(rng, first_row, min(BATCH, rows - first_row), rows, schema,
                                                    encodings))  # fmt: skip
        partial.replace(path)
    finally:
        ws.close()
    return root
