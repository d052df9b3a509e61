"""The inventory as typed pandas DataFrames, and the views analysts ask for first.

``frames(workspace)`` reads every table once: low-cardinality columns are categoricals, text is
pandas' Arrow-backed string, times are tz-aware UTC datetimes (microsecond resolution, so the
GBCS notAfter 9999-12-31 fits). The views are plain functions of those frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ceremony.clock import current
from ceremony.fs import create
from ceremony.record.inventory import CERTIFICATE_FRAME_COLUMNS, CERTIFICATE_SELECT, certificate_rows
from ceremony.record.workspace import Workspace

_CATEGORIES = {
    "certificates": (
        "issuer_ca", "issuer", "role", "usage", "profile", "key_algorithm", "signature_algorithm", "policy_oids",
        "status", "approved_by", "batch_id", "revocation_reason",
    ),
    "cas": ("role", "profile", "key_store"),
    "symmetric_keys": ("token", "algorithm", "kcv_method", "purpose", "origin", "state"),
    "crls": ("issuer_ca", "kind"),
    "asymmetric_keys": ("token", "key_store", "purpose", "algorithm", "origin", "state"),
}  # fmt: skip
_TIMES = {
    "certificates": ("not_before", "not_after", "issued_at", "revoked_at"),
    "cas": ("created_at", "issues_until"),
    "symmetric_keys": ("created_at", "activated_at", "rotation_due", "expires_at"),
    "crls": ("this_update", "next_update"),
    "batches": ("created_at", "completed_at"),
    "ceremonies": ("started", "sealed_at"),
    "asymmetric_keys": ("created_at", "destroyed_at"),
}
_INTEGERS = {
    "certificates": ("key_size",),
    "asymmetric_keys": ("key_size",),
}
#: Where each expiry bucket ends, in days from the as-of date (the last bucket is open-ended).
EXPIRY_BUCKETS = ((0, "expired"), (30, "< 30 days"), (90, "30-90 days"), (365, "90 days-1 year"),
                  (5 * 365, "1-5 years"))  # fmt: skip
NEVER = "never (GBCS 9999-12-31)"


#: The CAs with their generations: whom each succeeded, who succeeded it, and until when it issued (issue M).
_CAS = (
    "SELECT cas.*, before.predecessor AS predecessor, after.successor AS successor, "
    "after.issues_until AS issues_until FROM cas "
    "LEFT JOIN ca_successions AS before ON before.successor = cas.name "
    "LEFT JOIN ca_successions AS after ON after.predecessor = cas.name"
)


@dataclass
class Frames:
    certificates: pd.DataFrame
    cas: pd.DataFrame
    symmetric_keys: pd.DataFrame
    asymmetric_keys: pd.DataFrame
    crls: pd.DataFrame
    batches: pd.DataFrame
    ceremonies: pd.DataFrame


def _typed(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    for column in _TIMES.get(table, ()):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    for column in _CATEGORIES.get(table, ()):
        if column in frame:
            frame[column] = frame[column].astype("category")
    for column in _INTEGERS.get(table, ()):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    for column in frame.columns:
        if frame[column].dtype == object:  # an all-NULL column: text all the same (pandas' str dtype)
            frame[column] = frame[column].astype("str")
    return frame


def _read(ws: Workspace, sql: str, table: str) -> pd.DataFrame:
    cursor = ws.inventory._execute(sql)
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=list(cursor.keys()))
    return _typed(frame.drop(columns=["rowid"], errors="ignore"), table)


def _ceremonies(ws: Workspace) -> pd.DataFrame:
    """One row per ceremony on record, live and rehearsal (the rehearsal area keeps its own store):
    id, type, started, sealed, entries, deviations; an unsealed row is a run that was interrupted."""
    columns = "ceremony_id, type, started_at AS started, sealed_at, entries, deviations, rehearsal, transcript"
    sql = f"SELECT {columns} FROM ceremonies"  # noqa: S608
    parts = [_read(ws, sql, "ceremonies")]
    if (ws.rehearsal_dir / "workspace.yaml").is_file():
        rehearsal = Workspace.open(ws.rehearsal_dir)
        try:
            parts.append(_read(rehearsal, sql, "ceremonies"))
        finally:
            rehearsal.close()
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    frame["sealed"] = frame["sealed_at"].notna()
    frame["rehearsal"] = frame["rehearsal"].astype(bool)
    frame["type"] = frame["type"].astype("category")
    return frame.sort_values("started", ignore_index=True)


#: The columnar snapshot of the certificates: an Arrow IPC file (LZ4 frames), which pyarrow maps and hands
#: to pandas without decoding the strings: at 1M rows, 5x faster to load than the same rows as Parquet.
SNAPSHOT = "snapshots/certificates.arrow"


def _generation(ws: Workspace) -> str:
    """What changes whenever a certificate row does: rows and last rowid of certificates and revocations
    (the workbench only ever inserts certificates, and changes their status only by revoking)."""
    certs = ws.inventory._execute("SELECT COUNT(*), MAX(rowid) FROM certificates").fetchone()
    revoked = ws.inventory._execute("SELECT COUNT(*), MAX(rowid) FROM revocations").fetchone()
    return f"{certs[0]}:{certs[1]}:{revoked[0]}:{revoked[1]}"


def _snapshot_generation(path: Path) -> bytes | None:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            return (pa.ipc.open_file(source).schema.metadata or {}).get(b"generation")
    except (OSError, pa.ArrowInvalid):
        return None  # absent, or not a snapshot this version wrote: rebuilt


def certificates_frame(ws: Workspace, *, snapshot: bool = True) -> pd.DataFrame:
    """The certificates as a typed frame, from the columnar snapshot when it is in step with the
    database; otherwise the snapshot is rebuilt first, streamed in chunks (memory stays bounded)."""
    import pyarrow as pa

    if not snapshot:
        return _read(ws, CERTIFICATE_SELECT, "certificates")
    with pa.memory_map(str(fresh_snapshot(ws))) as source:
        return pa.ipc.open_file(source).read_all().to_pandas(types_mapper=pandas_type)


def fresh_snapshot(ws: Workspace, *, chunk: int = 100_000) -> Path:
    """The columnar certificates snapshot's path, the snapshot rebuilt first (``chunk`` rows per record batch) when
    it is not in step with the database (absent, of another version, or older than the last certificate or
    revocation)."""
    path = ws.root / SNAPSHOT
    generation = _generation(ws).encode()
    if _snapshot_generation(path) != generation:
        _write_snapshot(ws, path, generation, chunk)
    return path


def pandas_type(arrow_type: Any) -> Any:
    """The pandas dtype a snapshot column of ``arrow_type`` loads as, where not pandas' own choice (None)."""
    import pyarrow as pa

    return pd.Int64Dtype() if arrow_type == pa.int64() else None


def _arrow_type(column: str) -> Any:
    import pyarrow as pa

    if column in _TIMES["certificates"]:
        return pa.timestamp("us", tz="UTC")
    if column in _CATEGORIES["certificates"]:
        return pa.dictionary(pa.int32(), pa.string())
    if column in _INTEGERS.get("certificates", ()):
        return pa.int64()
    return pa.large_string()  # what pandas' str dtype holds: loaded without a cast


def _certificate_schema(metadata: dict[bytes, bytes] | None = None) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(c, _arrow_type(c)) for c in CERTIFICATE_FRAME_COLUMNS], metadata=metadata)


def _certificate_chunks(cursor: Any, chunk: int) -> Iterator[pd.DataFrame]:
    """The cursor's rows as typed frames of at most ``chunk`` rows (always one, empty when there are none)."""
    while True:
        rows = cursor.fetchmany(chunk)
        yield _typed(pd.DataFrame.from_records(rows, columns=list(CERTIFICATE_FRAME_COLUMNS)), "certificates")
        if len(rows) < chunk:
            return


def snapshot_schema(ws: Workspace, **labels: str) -> Any:
    """The certificates snapshot's Arrow schema, stamped with the database's generation as it is now (a snapshot
    written with it is read as in step with the database) and with ``labels`` as further metadata."""
    metadata = {b"generation": _generation(ws).encode(), **{k.encode(): v.encode() for k, v in labels.items()}}
    return _certificate_schema(metadata)


def _distinct(ws: Workspace, column: str) -> list[str]:
    """Every value a categorical certificate column holds in the database, sorted."""
    table, stored = ("revocations", "reason") if column == "revocation_reason" else ("certificates", column)
    sql = f"SELECT DISTINCT {stored} FROM {table} WHERE {stored} IS NOT NULL"  # noqa: S608 - our column names
    return sorted(str(row[0]) for row in ws.inventory._execute(sql).fetchall())


def _write_snapshot(ws: Workspace, path: Path, generation: bytes, chunk: int = 100_000) -> None:
    """Stream the rows into the snapshot in chunks. Every chunk's categories extend the previous
    chunk's, so the file carries dictionary deltas (the IPC file format allows no replacement).
    A column without a value in the first chunk starts from every value it holds: Arrow takes no delta
    to an empty dictionary (a replacement, refused), e.g. a revocation reason first met after 100,000 rows."""
    import pyarrow as pa

    schema = _certificate_schema({b"generation": generation})
    known: dict[str, list[str]] = {c: [] for c in CERTIFICATE_FRAME_COLUMNS if c in _CATEGORIES["certificates"]}
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    options = pa.ipc.IpcWriteOptions(compression="lz4", emit_dictionary_deltas=True)
    with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, schema, options=options) as writer:
        for i, frame in enumerate(_certificate_chunks(certificate_rows(ws.inventory), chunk)):
            if i == 0 and len(frame) == chunk:  # more chunks may follow
                for column, categories in known.items():
                    if not len(frame[column].cat.categories):
                        categories += _distinct(ws, column)
            for column, categories in known.items():
                seen = set(categories)
                categories += [c for c in frame[column].cat.categories if c not in seen]
                frame[column] = frame[column].cat.set_categories(categories)
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    partial.replace(path)
    path.with_name("certificates.parquet").unlink(missing_ok=True)  # the format before schema 5


def small_tables(ws: Workspace) -> dict[str, pd.DataFrame]:
    """Every inventory table but the certificates, as typed frames keyed by their ``Frames`` field name (tens or
    hundreds of rows each, however many certificates there are)."""
    return {
        "cas": _read(ws, _CAS, "cas"),
        "symmetric_keys": _read(ws, "SELECT * FROM symmetric_keys", "symmetric_keys"),
        "asymmetric_keys": _read(ws, "SELECT * FROM asymmetric_keys", "asymmetric_keys"),
        "crls": _read(ws, "SELECT * FROM crls", "crls"),
        "batches": _read(ws, "SELECT * FROM batches", "batches"),
        "ceremonies": _ceremonies(ws),
    }


def frames(workspace: Workspace | Path | str, *, snapshot: bool = True) -> Frames:
    """Every inventory table as a typed DataFrame (the DER stays in the database)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(Path(workspace))
    try:
        return Frames(certificates=certificates_frame(ws, snapshot=snapshot), **small_tables(ws))
    finally:
        if ws is not workspace:
            ws.close()


def write_parquet(f: Frames, directory: Path) -> None:
    """Every frame as ``<directory>/<name>.parquet`` (an evidence pack's inventory snapshot)."""
    directory.mkdir()
    for field in fields(Frames):
        getattr(f, field.name).to_parquet(directory / f"{field.name}.parquet", index=False)


def read_parquet(directory: Path) -> Frames:
    """The frames ``write_parquet`` wrote (the report reads the pack, not the workspace)."""
    return Frames(**{field.name: pd.read_parquet(directory / f"{field.name}.parquet") for field in fields(Frames)})


# --- views ------------------------------------------------------------------------------------
# Each view is a tally of the certificates (a few rows: counts per group, or the rows it lists) and a finish
# shared with the out-of-core views of ``ceremony.record.views``, which tally the columnar snapshot one record
# batch at a time: both give the same result for the same rows.
def _as_of(as_of: datetime | None) -> pd.Timestamp:
    return pd.Timestamp(as_of or current().now()).tz_convert("UTC")


#: The expiry buckets in order: ``EXPIRY_BUCKETS``' labels, then the open-ended one and the GBCS sentinel.
BUCKET_ORDER = (*(label for _, label in EXPIRY_BUCKETS), "> 5 years", NEVER)
#: From this notAfter year on a certificate never expires (GBCS: 9999-12-31T23:59:59Z).
NEVER_YEAR = 9999


def finish_expiry(bucket: pd.Categorical, profile: pd.Series, count: Any) -> pd.DataFrame:
    """``expiry_buckets`` from each group's bucket (ordered, ``BUCKET_ORDER``), profile and count."""
    counts = (
        pd.DataFrame({"bucket": bucket, "profile": profile, "certificates": count})
        .groupby(["bucket", "profile"], observed=True)["certificates"]
        .sum()
        .reset_index()
    )
    counts["profile"] = counts["profile"].astype(str)
    return counts.sort_values(["bucket", "profile"]).reset_index(drop=True)


def expiry_buckets(f: Frames, as_of: datetime | None = None) -> pd.DataFrame:
    """Valid certificates by time left until notAfter, per profile (device certificates never expire)."""
    now = _as_of(as_of)
    c = f.certificates
    valid = (c["status"] == "valid").to_numpy()
    not_after, profile = c["not_after"][valid], c["profile"][valid]
    days = (not_after - now) // pd.Timedelta(days=1)
    edges = [-float("inf")] + [limit for limit, _ in EXPIRY_BUCKETS] + [float("inf")]
    bucket = pd.cut(days, bins=edges, right=False, labels=BUCKET_ORDER[:-1]).cat.add_categories([NEVER])
    bucket[not_after.dt.year.to_numpy() >= NEVER_YEAR] = NEVER
    bucket = bucket.cat.reorder_categories(list(BUCKET_ORDER), ordered=True)
    return finish_expiry(pd.Categorical(bucket), profile, 1)


def finish_issuance(ym: Any, profile: pd.Series, count: Any) -> pd.DataFrame:
    """``issuance_per_month`` from each group's month (``year * 100 + month``), profile and count."""
    counts = (
        pd.DataFrame({"ym": ym, "profile": profile, "certificates": count})
        .groupby(["ym", "profile"], observed=True)["certificates"]
        .sum()
        .reset_index()
    )
    counts.insert(0, "month", [f"{ym // 100:04d}-{ym % 100:02d}" for ym in counts.pop("ym")])
    counts["profile"] = counts["profile"].astype(str)
    return counts.sort_values(["month", "profile"]).reset_index(drop=True)


def issuance_per_month(f: Frames) -> pd.DataFrame:
    """Certificates issued per calendar month and profile."""
    issued = f.certificates["issued_at"]
    return finish_issuance(issued.dt.year * 100 + issued.dt.month, f.certificates["profile"], 1)


#: The groups of ``by_profile_usage_role``, in order.
PROFILE_USAGE_ROLE = ["profile", "usage", "role", "status"]


def finish_by_profile_usage_role(tally: pd.DataFrame) -> pd.DataFrame:
    """``by_profile_usage_role`` from ``tally``: its ``PROFILE_USAGE_ROLE`` columns and a ``certificates`` count."""
    return tally.groupby(PROFILE_USAGE_ROLE, observed=True, dropna=False)["certificates"].sum().reset_index()


def by_profile_usage_role(f: Frames) -> pd.DataFrame:
    """Certificates by profile, usage, role and status (a missing usage or role is a group of its own)."""
    return finish_by_profile_usage_role(f.certificates[PROFILE_USAGE_ROLE].assign(certificates=1))


def finish_revocations(tally: pd.DataFrame) -> pd.DataFrame:
    """``revocations_by_reason`` from ``tally``: revoked rows' ``issuer_ca``, ``revocation_reason``, ``revoked``."""
    return tally.groupby(["issuer_ca", "revocation_reason"], observed=True)["revoked"].sum().reset_index()


def revocations_by_reason(f: Frames) -> pd.DataFrame:
    """Revoked certificates by issuing CA and reason."""
    revoked = f.certificates.dropna(subset=["revocation_reason"])
    return finish_revocations(revoked[["issuer_ca", "revocation_reason"]].assign(revoked=1))


def finish_lineage(cas: pd.DataFrame, tally: pd.DataFrame) -> pd.DataFrame:
    """``ca_lineage`` from the CAs and ``tally``: its ``issuer_ca``, ``status`` and ``certificates`` count."""
    counts = (
        tally.groupby(["issuer_ca", "status"], observed=True)["certificates"]
        .sum()
        .unstack(fill_value=0)
        .reindex(columns=["valid", "revoked"], fill_value=0)
    )
    columns = ["name", "role", "profile", "issuer_ca", "key_label", "predecessor", "successor", "issues_until"]
    cas = cas.reindex(columns=columns)
    before = dict(zip(cas["name"].astype(str), cas["predecessor"], strict=True))
    generation = {}
    for name in before:
        n, seen = 1, name
        while isinstance(before.get(seen), str) and n <= len(before):
            seen, n = str(before[seen]), n + 1
        generation[name] = n
    lineage = cas.assign(generation=cas["name"].astype(str).map(generation).astype("int64")).set_index("name")
    return lineage.join(counts).fillna({"valid": 0, "revoked": 0}).reset_index()


def ca_lineage(f: Frames) -> pd.DataFrame:
    """Each CA with its issuer, its generation in its line (1: the first; a renewal's successor one more than its
    predecessor), whom it succeeded and who succeeded it, until when it issued, and how many certificates it
    issued, valid and revoked."""
    return finish_lineage(f.cas, f.certificates[["issuer_ca", "status"]].assign(certificates=1))


def keys_by_state(f: Frames, as_of: datetime | None = None) -> pd.DataFrame:
    """Keys by kind, purpose and state: symmetric keys with those due for rotation or past their
    crypto-period; key pairs (CA and seal keys, on tokens) with their count only."""
    return keys_of(f.symmetric_keys, f.asymmetric_keys, as_of)


def keys_of(symmetric_keys: pd.DataFrame, asymmetric_keys: pd.DataFrame, as_of: datetime | None = None) -> pd.DataFrame:
    """``keys_by_state`` of these key tables (no certificate is read)."""
    now = _as_of(as_of)
    k = symmetric_keys
    symmetric = (
        k.assign(rotation_overdue=k["rotation_due"] <= now, expired=k["expires_at"] <= now)
        .groupby(["purpose", "state"], observed=True)
        .agg(keys=("label", "count"), rotation_overdue=("rotation_overdue", "sum"), expired=("expired", "sum"))
        .reset_index()
        .assign(kind="symmetric")
    )
    pairs = (
        asymmetric_keys.groupby(["purpose", "state"], observed=True)
        .agg(keys=("label", "count"))
        .reset_index()
        .assign(kind="key pair", rotation_overdue=0, expired=0)
    )
    columns = ["kind", "purpose", "state", "keys", "rotation_overdue", "expired"]
    parts = [p[columns].astype({"purpose": str, "state": str}) for p in (symmetric, pairs) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def device_profiles(profiles: Any) -> list[str]:
    """The device profiles among ``profiles`` (the views' notion of a device certificate)."""
    return [str(p) for p in profiles if "device" in str(p)]


def finish_missing_usage(devices: Any, has_ds: np.ndarray, has_ka: np.ndarray) -> pd.DataFrame:
    """``devices_missing_usage`` from each device's EUI-64 and whether it holds a valid DS and KA certificate."""
    lonely = has_ds ^ has_ka
    frame = pd.DataFrame({"eui64": np.asarray(devices)[lonely], "has": np.where(has_ds[lonely], "ds", "ka")})
    return frame.sort_values("eui64", ignore_index=True)


def devices_missing_usage(f: Frames) -> pd.DataFrame:
    """Devices with a valid certificate for one usage but not the other (DS without KA, or KA without DS)."""
    c = f.certificates
    valid = (
        (c["status"] == "valid") & c["profile"].isin(device_profiles(c["profile"].cat.categories)) & c["eui64"].notna()
    ).to_numpy()
    eui64, usage = c["eui64"][valid], c["usage"][valid]
    # Integer codes per device, then flags: hashing once, no string set operations.
    codes, devices = pd.factorize(eui64)
    has_ds, has_ka = np.zeros(len(devices), bool), np.zeros(len(devices), bool)
    has_ds[codes[(usage == "ds").to_numpy()]] = True
    has_ka[codes[(usage == "ka").to_numpy()]] = True
    return finish_missing_usage(devices, has_ds, has_ka)


def ca_certificate_issuer(ca: Any) -> str:
    """Who issued a CA's own certificate (row of ``Frames.cas``): its issuing CA, or itself for a root."""
    return str(ca.name if pd.isna(ca.issuer_ca) else ca.issuer_ca)


def finish_orphans(
    cas: pd.DataFrame, keys: pd.DataFrame, foreign: Any, certified: set[tuple[str, str]]
) -> pd.DataFrame:
    """``orphans`` from the CAs, the key pairs, the serials of the certificates whose issuing CA is unknown
    (``foreign``, in order) and the (issuing CA, serial) pairs of the CAs' own certificates found among the
    certificates (``certified``)."""
    rows = [{"kind": "certificate without its CA", "name": str(s)} for s in foreign]
    for ca in cas.itertuples():
        if (ca_certificate_issuer(ca), str(ca.serial)) not in certified:
            rows.append({"kind": "CA without its certificate", "name": ca.name})
    active = keys[(keys["state"] == "active") & (keys["purpose"] == "ca")]
    ca_labels = cas["key_label"].astype(str)
    stray = active[~active["label"].astype(str).isin(set(ca_labels))]
    rows += [{"kind": "key without a CA", "name": f"{k.token}/{k.label}"} for k in stray.itertuples()]
    keyless = cas[~ca_labels.isin(set(active["label"].astype(str)))]
    rows += [{"kind": "CA key not in the key inventory", "name": str(name)} for name in keyless["name"]]
    return pd.DataFrame(rows, columns=["kind", "name"])


def orphans(f: Frames) -> pd.DataFrame:
    """Certificates whose issuing CA is not in the inventory, CAs with no certificate of their own,
    CA keys on a token that no CA uses, and CAs whose key is not (or no longer) in the key inventory."""
    c = f.certificates
    issuer_ca = c["issuer_ca"].astype("category")  # codes, not strings, for the 1M-row comparisons
    known = set(f.cas["name"].astype(str))
    unknown = [name for name in issuer_ca.cat.categories if name not in known]
    foreign = c.loc[issuer_ca.isin(unknown).to_numpy(), "serial"].astype(str)
    serials = set(f.cas["serial"].astype(str))
    own = c.loc[c["serial"].isin(serials).to_numpy() & issuer_ca.notna().to_numpy(), ["issuer_ca", "serial"]]
    certified = {(str(i), str(s)) for i, s in own.itertuples(index=False)}
    return finish_orphans(f.cas, f.asymmetric_keys, foreign, certified)


def export_parquet(ws: Workspace, out: Path, filters: Mapping[str, str] | None = None, chunk: int = 100_000) -> int:
    """A selection of certificates as a Parquet file in the frames' columns and types (what
    ``frames().certificates`` holds, and what ``pd.read_parquet`` gives back), in the order issued, streamed
    one row group per ``chunk`` rows; returns the count.
    ``filters``: certificate column -> the value it must equal (none: every certificate)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _certificate_schema()
    count = 0
    with create(out, what="exports") as fh:
        writer: Any = None
        for frame in _certificate_chunks(certificate_rows(ws.inventory, filters, ordered=True), chunk):
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            if writer is None:  # the first chunk's schema carries pandas' metadata (nullable integers, str)
                writer = pq.ParquetWriter(fh, table.schema)
            writer.write_table(table)
            count += len(frame)
        writer.close()
    return count
