"""The inventory explorer's (notebook 70) inputs, figures and exports: each figure drawn once to a write-once PNG.

The explorer reads the inventory out of core (``ceremony.record.views``): its views stream the columnar
certificates snapshot, and no frame of every certificate is ever built, so ten million certificates fit in the
memory one million once took. The evidence report draws the same tables from a pack's frames
(``ceremony.record.frames``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ceremony.errors import InputError
from ceremony.fs import create, write_once
from ceremony.record import frames as fr
from ceremony.record import views as vw
from ceremony.reporting.cells import Shown
from ceremony.reporting.parameters import open_workspace

EXPORT_FORMATS = ("parquet", "csv")
DPI = 110
_WHAT = "plots and exports"


def export_formats(export: str | None) -> frozenset[str]:
    """The ``export`` parameter (``''``, ``'parquet'``, ``'csv'`` or ``'parquet,csv'``) as a set of formats."""
    formats = frozenset(x.strip() for x in (export or "").split(",") if x.strip())
    unknown = sorted(formats - set(EXPORT_FORMATS))
    if unknown:
        raise InputError(f"export: {', '.join(unknown)} is not one of {', '.join(EXPORT_FORMATS)} (got {export!r})")
    return formats


def parse_as_of(as_of: str | date | None, now: datetime) -> datetime:
    """The ``as_of`` parameter (``YYYY-MM-DD``: the start of that day in UTC; an ISO 8601 time is taken as
    it says, UTC when it names no offset), or ``now`` when it is unset."""
    if as_of is None or (isinstance(as_of, str) and not as_of.strip()):
        return now
    if isinstance(as_of, datetime):
        when = as_of
    elif isinstance(as_of, date):
        when = datetime.combine(as_of, time.min)
    else:
        try:
            when = datetime.fromisoformat(str(as_of).strip())
        except ValueError:
            raise InputError(f"as_of: {as_of!r} is not a date (YYYY-MM-DD)") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def output_dir(out_dir: str | Path | None, now: datetime, reports: Path = Path("reports")) -> Path:
    """``out_dir``, or ``<reports>/inventory-<UTC stamp>`` stamped by the workspace's clock (``reports``: the
    workspace's, ``<workspace>/reports``); created if missing, and absolute, so that what the notebook prints names
    the files wherever the kernel runs."""
    out = Path(out_dir) if out_dir else reports / f"inventory-{now.astimezone(timezone.utc):%Y%m%dT%H%M%S.%fZ}"
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve()


@dataclass(frozen=True)
class Explorer:
    """What notebook 70 works on: the inventory (out of core), the date its views are for, where its files go."""

    inventory: vw.Snapshot
    as_of: datetime
    out: Path
    formats: frozenset[str]


def explore(
    workspace: str | Path | None,
    *,
    as_of: str | date | None = None,
    out_dir: str | Path | None = None,
    export: str = "",
) -> Explorer:
    """Check the parameters (before anything is read or written), then open the workspace's inventory for the
    out-of-core views (the certificates snapshot brought in step; no certificate loaded).

    ``as_of`` and the default output directory come from the workspace's clock, so a pinned clock is honoured.
    """
    formats = export_formats(export)
    ws = open_workspace(workspace)
    try:
        now = ws.clock.now()
        when = parse_as_of(as_of, now)
        inventory = vw.snapshot(ws)
    finally:
        ws.close()
    return Explorer(inventory, when, output_dir(out_dir, now, ws.reports_dir), formats)


def headline(x: Explorer) -> str:
    i = x.inventory
    synthetic = " (synthetic)" if "synthetic" in i.labels else ""
    return (
        f"{i.rows:,} certificates{synthetic}, {len(i.cas)} CAs, {len(i.symmetric_keys)} symmetric keys, "
        f"{len(i.asymmetric_keys)} key pairs, {len(i.crls)} CRLs, {len(i.ceremonies)} ceremonies; "
        f"as of {x.as_of:%Y-%m-%d}; output {x.out}"
    )


# --- figures ---------------------------------------------------------------------------------
def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A figure and its axes without pyplot: no global figure state, no GUI backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def counts_axis(ax: Any, axis: str = "x", label: str | None = None) -> None:
    """A count axis: whole-number ticks only (no 0.25 steps), from zero, with a plain label."""
    from matplotlib.ticker import MaxNLocator

    locator = MaxNLocator(integer=True, min_n_ticks=1)
    if axis == "x":
        ax.xaxis.set_major_locator(locator)
        ax.set_xlim(left=0)
        ax.set_xlabel(label or "")
    else:
        ax.yaxis.set_major_locator(locator)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(label or "")


def plain_labels(index: pd.Index) -> list[str]:
    """Index entries as plain labels: a multi-level entry ``("key pair", "ca")`` reads ``key pair: ca``."""
    return [": ".join(str(part) for part in entry) if isinstance(entry, tuple) else str(entry) for entry in index]


def save_png(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (write-once: an existing file is refused, a link never followed)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    write_once(path, buffer.getvalue(), what=_WHAT)
    return path


def _figure(png: Path, table: pd.DataFrame) -> Shown:
    """A figure, where its PNG was saved, and its table."""
    return Shown((png, f"saved `{png}`", table))


def expiry_table(f: fr.Frames | vw.Snapshot, when: datetime) -> pd.DataFrame:
    """Valid certificates per expiry bucket (rows) and profile (columns), of a pack's frames or the inventory."""
    buckets = vw.expiry_buckets(f, when) if isinstance(f, vw.Snapshot) else fr.expiry_buckets(f, when)
    return buckets.pivot_table(
        index="bucket", columns="profile", values="certificates", aggfunc="sum", fill_value=0, observed=False
    )


def expiry_png(table: pd.DataFrame, path: Path, *, title: str, height: float = 3.5) -> Path:
    fig, ax = new_figure(8, height)
    if table.size:
        table.plot.barh(stacked=True, ax=ax, title=title)
        ax.legend(title="profile", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.set_title(title)
    ax.set_ylabel("")
    counts_axis(ax, "x", "certificates")
    return save_png(fig, path)


def keys_table(f: fr.Frames | vw.Snapshot, when: datetime) -> pd.DataFrame:
    """Keys by kind, purpose and state, of a pack's frames or the inventory."""
    return fr.keys_of(f.symmetric_keys, f.asymmetric_keys, when)


def keys_png(keys: pd.DataFrame, path: Path, *, height: float = 2.5) -> Path:
    by_state = keys.pivot_table(
        index=["kind", "purpose"], columns="state", values="keys", aggfunc="sum", fill_value=0, observed=False
    )
    by_state.index = pd.Index(plain_labels(by_state.index))
    fig, ax = new_figure(8, height)
    by_state.plot.barh(stacked=True, ax=ax, title="Keys by kind, purpose and state")
    ax.set_ylabel("")
    ax.legend(title="state", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    counts_axis(ax, "x", "keys")
    return save_png(fig, path)


def draw_expiry(x: Explorer) -> Shown:
    """``expiry.png``: valid certificates by time to expiry, as of the explorer's date; with its table."""
    table = expiry_table(x.inventory, x.as_of)
    title = f"Valid certificates by time to expiry, as of {x.as_of:%Y-%m-%d}"
    return _figure(expiry_png(table, x.out / "expiry.png", title=title), table)


def draw_issuance(x: Explorer) -> Shown:
    """``issuance.png``: certificates issued per month, stacked by profile on a time axis; with its table."""
    import matplotlib.dates

    issued = vw.issuance_per_month(x.inventory).pivot_table(
        index="month", columns="profile", values="certificates", aggfunc="sum", fill_value=0
    )
    fig, ax = new_figure(8, 3.5)
    if len(issued):
        months = pd.PeriodIndex(issued.index, freq="M").to_timestamp()
        bottoms = issued.cumsum(axis=1) - issued  # stacked bars on a time axis, one per month
        for profile in issued.columns:
            ax.bar(months, issued[profile], width=25, bottom=bottoms[profile], align="edge", label=profile)
        ax.set_xlim(months.min() - pd.DateOffset(months=1), months.max() + pd.DateOffset(months=2))
        locator = matplotlib.dates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call,unused-ignore]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call,unused-ignore]
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax.set_title("Certificates issued per month")
    counts_axis(ax, "y", "certificates")
    return _figure(save_png(fig, x.out / "issuance.png"), issued)


def draw_revocations(x: Explorer) -> Shown:
    """``revocations.png`` (only when anything was revoked): revocations by CA and reason; with its table."""
    revoked = vw.revocations_by_reason(x.inventory)
    if not len(revoked):
        return Shown((revoked,))
    fig, ax = new_figure(8, 2.5)
    by_reason = revoked.set_index(["issuer_ca", "revocation_reason"])["revoked"]
    by_reason.index = pd.Index(plain_labels(by_reason.index))
    by_reason.plot.barh(ax=ax, title="Revocations by CA and reason")
    counts_axis(ax, "x", "certificates revoked")
    return _figure(save_png(fig, x.out / "revocations.png"), revoked)


def draw_keys(x: Explorer) -> Shown:
    """``keys.png`` (only when the inventory holds keys): keys by kind, purpose and state; with its table."""
    keys = keys_table(x.inventory, x.as_of)
    if not len(keys):
        return Shown((keys,))
    return _figure(keys_png(keys, x.out / "keys.png"), keys)


def missing_usage(x: Explorer, *, rows: int = 20) -> Shown:
    """Devices with a valid certificate for one usage only: how many, and the first ``rows`` of them."""
    missing = vw.devices_missing_usage(x.inventory)
    return Shown((f"{len(missing)} device(s) with a valid certificate for one usage only", missing.head(rows)))


def ca_lineage(x: Explorer) -> pd.DataFrame:
    """The CAs, their lines and successions, and the certificates each issued (valid, revoked)."""
    return vw.ca_lineage(x.inventory)


def by_profile_usage_role(x: Explorer) -> pd.DataFrame:
    """The certificates by profile, usage, role and status."""
    return vw.by_profile_usage_role(x.inventory)


def orphans(x: Explorer) -> pd.DataFrame:
    """Certificates without their CA, CAs without their certificate, stray and missing CA keys."""
    return vw.orphans(x.inventory)


def certificates(
    x: Explorer, columns: list[str] | None = None, where: dict[str, Any] | None = None, *, limit: int | None = None
) -> pd.DataFrame:
    """A typed frame of the certificates ``where`` selects (column -> a value or a list of values), in ``columns``
    (default: every one), at most ``limit`` of them: for ad-hoc questions, loading only what is asked for."""
    return vw.certificates(x.inventory, columns, where, limit=limit)


def ceremonies(x: Explorer) -> pd.DataFrame:
    """The ceremonies on record (without the transcript path column)."""
    return x.inventory.ceremonies.drop(columns=["transcript"], errors="ignore")


def export_certificates(x: Explorer) -> list[str]:
    """Write every certificate in each asked-for format (write-once), streamed one record batch at a time from the
    snapshot (memory does not grow with the inventory); returns every file the notebook wrote (its PNGs and
    exports), by absolute path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "parquet" in x.formats:
        with create(x.out / "certificates.parquet", what=_WHAT) as fh:
            writer: Any = None
            for frame in vw.certificate_frames(x.inventory):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:  # the first batch's schema carries pandas' metadata (nullable integers, str)
                    writer = pq.ParquetWriter(fh, table.schema)
                writer.write_table(table.cast(writer.schema))
            if writer is not None:
                writer.close()
    if "csv" in x.formats:
        with create(x.out / "certificates.csv", what=_WHAT, text=True) as fh:
            for i, frame in enumerate(vw.certificate_frames(x.inventory)):
                frame.to_csv(fh, index=False, header=i == 0)
    return sorted(str(p) for p in x.out.iterdir())
