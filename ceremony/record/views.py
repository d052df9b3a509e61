"""The inventory views computed out of core: over the columnar certificates snapshot, one record batch at a time.

``snapshot(workspace)`` brings the snapshot (``frames.SNAPSHOT``, an Arrow IPC file) in step with the database and
reads the small tables; it loads no certificate. Each view reads only the columns it needs, batch by batch, and
keeps only a tally (counts per group, as dictionary codes) or the rows it lists, so memory does not grow with the
inventory. Every view here answers exactly what its namesake in ``ceremony.record.frames`` answers over the whole
typed frame: both end in the same finish (``frames.finish_*``). ``certificates`` loads a typed frame of a
selection (some columns, some rows), never more than asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ceremony.errors import StateError
from ceremony.record import frames as fr
from ceremony.record.inventory import CERTIFICATE_FRAME_COLUMNS
from ceremony.record.workspace import Workspace

_DAY_US = 86_400_000_000
#: 9999-01-01T00:00:00Z in microseconds since the epoch: a notAfter from then on never expires (GBCS).
_NEVER_US = int(np.datetime64(f"{fr.NEVER_YEAR}-01-01", "us").astype(np.int64))
_HEX = b"0123456789ABCDEF"


@dataclass(frozen=True)
class Snapshot:
    """The inventory as the out-of-core views read it: the certificates as the columnar snapshot's file (in step
    with the database when it was opened), every other table as a typed frame (tens or hundreds of rows)."""

    path: Path
    #: The database generation the file was in step with (every view checks it is still that file).
    generation: bytes
    #: Certificates in the snapshot.
    rows: int
    #: Further metadata the file carries (``synthetic`` on a benchmark's file, saying who wrote it).
    labels: Mapping[str, str]
    cas: pd.DataFrame
    symmetric_keys: pd.DataFrame
    asymmetric_keys: pd.DataFrame
    crls: pd.DataFrame
    batches: pd.DataFrame
    ceremonies: pd.DataFrame


def snapshot(workspace: Workspace | Path | str) -> Snapshot:
    """The workspace's inventory for the out-of-core views: the certificates snapshot brought in step with the
    database (rebuilt, streamed, when it is not), and the other tables read."""
    import pyarrow as pa

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(Path(workspace))
    try:
        path = fr.fresh_snapshot(ws)
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_file(source)
            metadata = dict(reader.schema.metadata or {})
            rows = reader.count_rows()
        generation = metadata.pop(b"generation")
        labels = {k.decode(): v.decode() for k, v in metadata.items() if not k.startswith(b"pandas")}
        return Snapshot(path, generation, rows, labels, **fr.small_tables(ws))
    finally:
        if ws is not workspace:
            ws.close()


def _batches(s: Snapshot, columns: Sequence[str]) -> Iterator[Any]:
    """The snapshot's record batches with only ``columns`` read (an IPC file's fields are read one by one)."""
    import pyarrow as pa

    with pa.memory_map(str(s.path)) as source:
        schema = pa.ipc.open_file(source).schema
        if (schema.metadata or {}).get(b"generation") != s.generation:
            raise StateError(f"{s.path} changed since the inventory was opened: open it again (views.snapshot)")
        fields = [schema.get_field_index(c) for c in columns]
        reader = pa.ipc.open_file(source, options=pa.ipc.IpcReadOptions(included_fields=fields))
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def _codes(column: Any) -> np.ndarray:
    """A dictionary column's codes (int64), a missing value as -1. Every batch's dictionary extends the one
    before it (the file carries dictionary deltas), so a code means the same value in every batch."""
    return np.asarray(column.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)


def _code_of(column: Any, value: str) -> int:
    """The code of ``value`` in a dictionary column (-2, matching nothing, when the value is absent)."""
    found = [i for i, v in enumerate(column.dictionary.to_pylist()) if v == value]
    return found[0] if found else -2


def _present(column: Any) -> np.ndarray:
    """Which rows of a column hold a value."""
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), bool)


def _us(column: Any) -> np.ndarray:
    """A timestamp column as microseconds since the epoch (a missing value as 0: mask it)."""
    import pyarrow as pa

    return np.asarray(column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), np.int64)


def _tally(
    s: Snapshot,
    keys: Sequence[str],
    count: str,
    *,
    derived: Callable[[Any], np.ndarray] | None = None,
    where: Callable[[Any], np.ndarray] | None = None,
    read: Sequence[str] = (),
) -> tuple[pd.DataFrame, np.ndarray]:
    """How many certificates fall in each group of the dictionary columns ``keys`` (and of one ``derived`` integer
    per row), among the rows ``where`` selects; ``read``: the further columns those two need.

    Returns the groups as a typed frame (``keys`` as categoricals with the snapshot's categories, as the typed
    frame has them, and the ``count`` column) and each group's derived value.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    totals: dict[tuple[int, ...], int] = {}
    dictionaries: dict[str, Any] = {k: pa.array([], pa.string()) for k in keys}
    for batch in _batches(s, list(dict.fromkeys([*keys, *read]))):
        selected = where(batch) if where is not None else np.ones(batch.num_rows, bool)
        # Each row's group as one integer (mixed radix): codes shifted by one, so that a missing value is 0.
        parts = [(_codes(batch.column(k))[selected] + 1, len(batch.column(k).dictionary) + 1) for k in keys]
        low = 0
        if derived is not None:
            extra = derived(batch)[selected]
            low = int(extra.min()) if len(extra) else 0
            parts.append((extra - low, (int(extra.max()) - low if len(extra) else 0) + 1))
        combined = np.zeros(int(selected.sum()), np.int64)
        for codes, radix in parts:
            combined = combined * radix + codes
        found, counts = np.unique(combined, return_counts=True)
        decoded = []
        for _, radix in reversed(parts):
            found, code = np.divmod(found, radix)
            decoded.append(code)
        decoded.reverse()
        groups = [d - 1 for d in decoded[: len(keys)]] + [d + low for d in decoded[len(keys) :]]
        for *group, n in zip(*(g.tolist() for g in groups), counts.tolist(), strict=True):
            totals[tuple(group)] = totals.get(tuple(group), 0) + n
        dictionaries = {k: batch.column(k).dictionary for k in keys}
    found_groups = list(totals)
    arrays = {}
    for i, k in enumerate(keys):
        codes = pa.array([g[i] for g in found_groups], pa.int32())
        arrays[k] = pa.DictionaryArray.from_arrays(pc.if_else(pc.less(codes, 0), None, codes), dictionaries[k])
    frame = pa.table(arrays).to_pandas()
    frame[count] = np.asarray([totals[g] for g in found_groups], np.int64)
    values = np.asarray([g[-1] for g in found_groups] if derived is not None else [], np.int64)
    return frame, values


def _valid(batch: Any) -> np.ndarray:
    status = batch.column("status")
    return np.asarray(_codes(status) == _code_of(status, "valid"), bool)


# --- views ------------------------------------------------------------------------------------
def expiry_buckets(s: Snapshot, as_of: datetime | None = None) -> pd.DataFrame:
    """Valid certificates by time left until notAfter, per profile (as ``frames.expiry_buckets``)."""
    now = int(fr._as_of(as_of).as_unit("us").asm8.astype(np.int64))
    limits = np.asarray([limit for limit, _ in fr.EXPIRY_BUCKETS], np.int64)

    def bucket(batch: Any) -> np.ndarray:
        not_after = _us(batch.column("not_after"))
        # pd.cut(right=False) over whole days, floored: the bucket whose lower limit the days reach.
        at = np.searchsorted(limits, (not_after - now) // _DAY_US, side="right")
        return np.where(not_after >= _NEVER_US, len(fr.BUCKET_ORDER) - 1, at)

    def where(batch: Any) -> np.ndarray:
        chosen: np.ndarray = _valid(batch) & _present(batch.column("not_after"))
        return chosen

    tally, buckets = _tally(s, ["profile"], "n", derived=bucket, where=where, read=["status", "not_after"])
    order = pd.Categorical.from_codes(buckets, categories=list(fr.BUCKET_ORDER), ordered=True)
    return fr.finish_expiry(order, tally["profile"], tally["n"].to_numpy())


def issuance_per_month(s: Snapshot) -> pd.DataFrame:
    """Certificates issued per calendar month and profile (as ``frames.issuance_per_month``)."""

    def day(batch: Any) -> np.ndarray:  # tallied by day (integer division), the days made months at the end
        return _us(batch.column("issued_at")) // _DAY_US

    def where(batch: Any) -> np.ndarray:
        return _present(batch.column("issued_at"))

    tally, days = _tally(s, ["profile"], "n", derived=day, where=where, read=["issued_at"])
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return fr.finish_issuance((months // 12 + 1970) * 100 + months % 12 + 1, tally["profile"], tally["n"].to_numpy())


def by_profile_usage_role(s: Snapshot) -> pd.DataFrame:
    """Certificates by profile, usage, role and status (as ``frames.by_profile_usage_role``)."""
    return fr.finish_by_profile_usage_role(_tally(s, fr.PROFILE_USAGE_ROLE, "certificates")[0])


def revocations_by_reason(s: Snapshot) -> pd.DataFrame:
    """Revoked certificates by issuing CA and reason (as ``frames.revocations_by_reason``)."""

    def where(batch: Any) -> np.ndarray:
        return _codes(batch.column("revocation_reason")) >= 0

    return fr.finish_revocations(_tally(s, ["issuer_ca", "revocation_reason"], "revoked", where=where)[0])


def ca_lineage(s: Snapshot) -> pd.DataFrame:
    """Each CA with its line, successions and certificates issued, valid and revoked (as ``frames.ca_lineage``)."""
    return fr.finish_lineage(s.cas, _tally(s, ["issuer_ca", "status"], "certificates")[0])


def keys_by_state(s: Snapshot, as_of: datetime | None = None) -> pd.DataFrame:
    """Keys by kind, purpose and state (as ``frames.keys_by_state``; no certificate is read)."""
    return fr.keys_of(s.symmetric_keys, s.asymmetric_keys, as_of)


def _hex_keys(eui64: Any) -> np.ndarray | None:
    """EUI-64s (an Arrow string array without missing values) as integers, when every one is 16 upper-case hex
    digits (as the workbench stores them; the text then reads back exactly); otherwise None."""
    if not len(eui64):
        return np.zeros(0, np.uint64)
    _, offsets_buffer, data_buffer = eui64.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[eui64.offset : eui64.offset + len(eui64) + 1]
    if not (np.diff(offsets) == 16).all():
        return None
    data = np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 16)
    table = np.full(256, 255, np.uint8)
    table[np.frombuffer(_HEX, np.uint8)] = np.arange(16, dtype=np.uint8)
    nibbles = table[data]
    if (nibbles == 255).any():
        return None
    octets = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return np.ascontiguousarray(octets).view(">u8").ravel().astype(np.uint64)


def _hex_text(keys: np.ndarray) -> np.ndarray:
    """Integers as 16 upper-case hex digits (what ``_hex_keys`` read)."""
    octets = keys.astype(">u8").view(np.uint8).reshape(-1, 8)
    digits = np.frombuffer(_HEX, np.uint8)
    chars = np.empty((len(keys), 16), np.uint8)
    chars[:, 0::2], chars[:, 1::2] = digits[octets >> 4], digits[octets & 15]
    return np.asarray(chars.view("S16").ravel().astype(str), object)


def devices_missing_usage(s: Snapshot) -> pd.DataFrame:
    """Devices with a valid certificate for one usage but not the other (as ``frames.devices_missing_usage``).

    Each valid device certificate is kept as its device's EUI-64 read as an integer (8 bytes, not a string) and a
    usage flag; a device is then found by hashing those integers once."""
    import pyarrow as pa

    numbers: list[np.ndarray] = []
    texts: list[Any] = []
    flags: list[np.ndarray] = []
    for batch in _batches(s, ["status", "profile", "eui64", "usage"]):
        profile, usage, eui64 = batch.column("profile"), batch.column("usage"), batch.column("eui64")
        names = profile.dictionary.to_pylist()
        devices = np.asarray([p in fr.device_profiles(names) for p in names] + [False])
        keep = _valid(batch) & devices[_codes(profile)] & _present(eui64)
        code = _codes(usage)
        flag = np.where(code == _code_of(usage, "ds"), 1, np.where(code == _code_of(usage, "ka"), 2, 0))
        chosen = eui64.filter(pa.array(keep))
        as_numbers = _hex_keys(chosen) if not texts else None
        if as_numbers is None:
            texts.append(chosen)
        else:
            numbers.append(as_numbers)
        flags.append(flag[keep].astype(np.uint8))
    usage_flags = np.concatenate(flags) if flags else np.zeros(0, np.uint8)
    if texts:  # some EUI-64 is not as the workbench writes them: compare the text, as the typed frame does
        earlier = [pa.array(_hex_text(n), pa.large_string()) for n in numbers]
        every = pa.chunked_array([*earlier, *(t.cast(pa.large_string()) for t in texts)], pa.large_string())
        codes, devices = pd.factorize(every.to_numpy())
    else:
        codes, devices = pd.factorize(np.concatenate(numbers) if numbers else np.zeros(0, np.uint64))
    has_ds, has_ka = np.zeros(len(devices), bool), np.zeros(len(devices), bool)
    has_ds[codes[usage_flags == 1]] = True
    has_ka[codes[usage_flags == 2]] = True
    lonely = has_ds ^ has_ka
    shown = np.asarray(devices)[lonely]
    return fr.finish_missing_usage(shown if texts else _hex_text(shown), has_ds[lonely], has_ka[lonely])


def orphans(s: Snapshot) -> pd.DataFrame:
    """Certificates without their CA, CAs without their certificate, stray and missing CA keys (as
    ``frames.orphans``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    known = set(s.cas["name"].astype(str))
    serials = pa.array(sorted(set(s.cas["serial"].astype(str))), pa.large_string())
    foreign: list[str] = []
    certified: set[tuple[str, str]] = set()
    for batch in _batches(s, ["issuer_ca", "serial"]):
        issuer_ca, serial = batch.column("issuer_ca"), batch.column("serial")
        names = issuer_ca.dictionary.to_pylist()
        unknown = np.asarray([n not in known for n in names] + [False])
        codes = _codes(issuer_ca)
        foreign += serial.filter(pa.array(unknown[codes])).to_pylist()
        own = np.asarray(pc.is_in(serial, value_set=serials).to_numpy(zero_copy_only=False)) & (codes >= 0)
        certified |= {(names[c], str(v)) for c, v in zip(codes[own], serial.filter(pa.array(own)).to_pylist(),
                                                          strict=True)}  # fmt: skip
    return fr.finish_orphans(s.cas, s.asymmetric_keys, foreign, certified)


# --- selections -------------------------------------------------------------------------------
def _selected(batch: Any, where: Mapping[str, str | Sequence[str]]) -> Any:
    """Which rows of ``batch`` hold, in every column named in ``where``, the value (or one of the values) given."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = np.ones(batch.num_rows, bool)
    for column, wanted in where.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        data = batch.column(column)
        if pa.types.is_dictionary(data.type):
            codes = [i for i, v in enumerate(data.dictionary.to_pylist()) if v in values]
            keep &= np.isin(_codes(data), codes)
        else:
            keep &= np.asarray(pc.is_in(data, value_set=pa.array(values, data.type)).to_numpy(zero_copy_only=False))
    return pa.array(keep)


def _columns(columns: Sequence[str] | None, where: Mapping[str, Any] | None) -> tuple[list[str], list[str]]:
    """The columns asked for (default: every one), and those to read (with the ones ``where`` tests)."""
    wanted = list(columns or CERTIFICATE_FRAME_COLUMNS)
    unknown = [c for c in [*wanted, *(where or {})] if c not in CERTIFICATE_FRAME_COLUMNS]
    if unknown:
        raise ValueError(f"not certificate columns: {', '.join(unknown)}")  # a bug in the caller, never user input
    return wanted, list(dict.fromkeys([*wanted, *(where or {})]))


def _chosen(s: Snapshot, columns: Sequence[str] | None, where: Mapping[str, str | Sequence[str]] | None,
            ) -> Iterator[Any]:  # fmt: skip
    wanted, read = _columns(columns, where)
    for batch in _batches(s, read):
        yield (batch.filter(_selected(batch, where)) if where else batch).select(wanted)


def certificate_frames(
    s: Snapshot, columns: Sequence[str] | None = None, where: Mapping[str, str | Sequence[str]] | None = None
) -> Iterator[pd.DataFrame]:
    """The certificates ``where`` selects (column -> the value, or one of the values, it must hold; none: every
    row), one typed frame per record batch, in the frames' columns (``columns``: only those, in that order)."""
    for batch in _chosen(s, columns, where):
        yield batch.to_pandas(types_mapper=fr.pandas_type)


def certificates(
    s: Snapshot,
    columns: Sequence[str] | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    *,
    limit: int | None = None,
) -> pd.DataFrame:
    """A typed frame of the certificates ``where`` selects (as ``certificate_frames``; the first ``limit`` of them
    when given): only those rows and ``columns`` are ever loaded, whatever the size of the inventory."""
    import pyarrow as pa

    parts, kept = [], 0
    for batch in _chosen(s, columns, where):
        parts.append(batch if limit is None else batch.slice(0, limit - kept))
        kept += parts[-1].num_rows
        if limit is not None and kept >= limit:
            break
    with pa.memory_map(str(s.path)) as source:
        schema = pa.ipc.open_file(source).schema
    chosen = pa.schema([schema.field(c) for c in _columns(columns, where)[0]])
    return pa.Table.from_batches(parts, schema=chosen).to_pandas(types_mapper=fr.pandas_type)
