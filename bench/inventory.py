"""Inventory benchmark: the out-of-core views and the explorer notebook over 10M synthetic certificates.

    python -m bench.inventory [--rows 1000000] [--database-rows 1000000] [--json] [--markdown docs/benchmarks.md]

Measured in one run on this machine:

- views: every view notebook 70 shows (``ceremony.record.views``), and a typed frame of a selection (the revoked
  certificates), each in a child process over ``--rows`` synthetic certificates, with its seconds and the child's
  peak RSS (``ru_maxrss``). The synthetic rows are written straight into the workspace's columnar snapshot with
  Arrow (``bench.synthetic.make_snapshot``: labelled synthetic, stamped in step with the database), so the views
  and the notebook read them through the workbench's own code paths.
- notebook: the papermill floor (a notebook that only takes its parameters), notebook 70 over 1M and over
  ``--rows`` synthetic certificates, and over 1M with ``-p export parquet``; best of three interleaved runs,
  each run in a child process so that the kernel's peak RSS is known.
- database (``--database-rows``, 0 to skip): the rows inserted into SQLite by ``make_inventory``, then plain
  ``pd.read_sql`` of the certificate columns, the typed frame with the snapshot rebuilt from the database, and the
  typed frame read from the snapshot, each in a child process (the earlier targets of the typed frame).

With --markdown the "Inventory" section of the file is replaced (the other benchmarks write the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARK = "<!-- inventory benchmark -->"
AS_OF = "2026-11-24"
MEMORY_MB = 2048
#: The views notebook 70 shows, and a selection loaded as a typed frame, as measured.
VIEWS = (
    "expiry_buckets", "issuance_per_month", "by_profile_usage_role", "revocations_by_reason", "ca_lineage",
    "keys_by_state", "devices_missing_usage", "orphans", "selection",
)  # fmt: skip

_VIEW_CHILD = """
import json, resource, sys, time
from datetime import datetime, timezone
from pathlib import Path
from ceremony.record import views as vw
root, view = Path(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
inventory = vw.snapshot(root)
opened = time.perf_counter()
when = datetime.fromisoformat(sys.argv[3]).replace(tzinfo=timezone.utc)
if view == "selection":
    out = vw.certificates(inventory, ["serial", "issuer_ca", "eui64", "revoked_at", "revocation_reason"],
                          {"status": "revoked"})
elif view in ("expiry_buckets", "keys_by_state"):
    out = getattr(vw, view)(inventory, when)
else:
    out = getattr(vw, view)(inventory)
done = time.perf_counter()
print(json.dumps({"view": view, "result_rows": len(out), "open_seconds": opened - started,
                  "seconds": done - opened, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_LOAD_CHILD = """
import json, resource, sqlite3, sys, time
from pathlib import Path
import pandas as pd
from ceremony.record import frames as fr
from ceremony.record.workspace import Workspace
root, how = Path(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
if how == "read_sql":
    sql = fr.CERTIFICATE_SELECT
    rows = len(pd.read_sql(sql, sqlite3.connect(root / "inventory.sqlite")))
else:
    ws = Workspace.open(root)
    if how == "cold":
        (root / fr.SNAPSHOT).unlink(missing_ok=True)
    rows = len(fr.certificates_frame(ws))
    ws.close()
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_KERNEL_CHILD = """
import json, resource, sys
from pathlib import Path
from ceremony.reporting.notebooks import run_notebook
run_notebook(Path(sys.argv[1]), json.loads(sys.argv[2]), reports_dir=Path(sys.argv[3]), progress=False)
print(json.dumps({"kernel_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _child(script: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _floor_notebook(path: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cell = new_code_cell("workspace = None")
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [cell]
    nbformat.write(nb, path)
    return path


def _generated(root: Path, rows: int) -> tuple[Path, float]:
    from bench.synthetic import make_snapshot

    started = time.perf_counter()
    make_snapshot(root, rows)
    return root, time.perf_counter() - started


def _notebooks(workdir: Path, small: Path, large: Path | None, bare: Path, rounds: int = 3) -> dict[str, Any]:
    """Best of ``rounds`` (three) interleaved runs of the floor and notebook 70 (over the two CAs alone, 1M, 1M
    with export, ``large``), in this process as a session runs them; and the kernel's peak RSS over the largest
    inventory."""
    from ceremony.reporting.notebooks import run_notebook

    floor = _floor_notebook(workdir / "floor.ipynb")
    notebook = REPO / "notebooks" / "70-inventory-explorer.ipynb"
    cases: dict[str, tuple[Path, dict[str, Any]]] = {"floor": (floor, {"workspace": str(small)})}
    cases["notebook_cas"] = (notebook, {"workspace": str(bare), "as_of": AS_OF})
    cases["notebook_1m"] = (notebook, {"workspace": str(small), "as_of": AS_OF})
    cases["notebook_1m_export"] = (notebook, {"workspace": str(small), "as_of": AS_OF, "export": "parquet"})
    if large is not None:
        cases["notebook_rows"] = (notebook, {"workspace": str(large), "as_of": AS_OF})
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for rep in range(rounds):  # interleaved, best of three: the machine is shared
        for name, (path, params) in cases.items():
            out = {**params, "out_dir": str(workdir / f"{name}-{rep}")} if path == notebook else params
            started = time.perf_counter()
            run_notebook(path, out, reports_dir=workdir / "reports", progress=False)
            runs[name].append(time.perf_counter() - started)
    report: dict[str, Any] = {name: {"seconds": min(times)} for name, times in runs.items()}
    # The kernel's peak RSS, from one more run in a fresh child: in this process RUSAGE_CHILDREN also counts what a
    # forked child held of this process before it ran the kernel.
    biggest, params = cases["notebook_rows" if large is not None else "notebook_1m"]
    out = {**params, "out_dir": str(workdir / "rss")}
    report["kernel_peak_rss_mb"] = _child(_KERNEL_CHILD, str(biggest), json.dumps(out), str(workdir / "reports"))[
        "kernel_peak_rss_mb"
    ]
    return report


def run(rows: int, workdir: Path, *, database_rows: int | None = None, rounds: int = 3) -> dict[str, Any]:
    """Every figure over ``rows`` synthetic certificates (the notebook also over 1M, or ``rows`` when fewer, best
    of ``rounds``), and the typed frame through the database over ``database_rows`` (default: as many, up to 1M;
    0: skipped)."""
    million = min(rows, 1_000_000)
    report: dict[str, Any] = {"rows": rows, "as_of": AS_OF}
    large, report["generate_seconds"] = _generated(workdir / "ws-rows", rows)
    small, report["generate_1m_seconds"] = (large, report["generate_seconds"]) if rows == million else (
        _generated(workdir / "ws-1m", million))  # fmt: skip
    report["notebook_rows_1m"] = million
    bare, _ = _generated(workdir / "ws-cas", 0)
    report["notebooks"] = _notebooks(workdir, small, large if rows != million else None, bare, rounds)
    report["views"] = {view: _child(_VIEW_CHILD, str(large), view, AS_OF) for view in VIEWS}
    report["frame_1m"] = _child(_LOAD_CHILD, str(small), "warm")  # the typed frame of every certificate, at 1M
    database_rows = million if database_rows is None else database_rows
    if database_rows:
        from bench.synthetic import make_inventory

        started = time.perf_counter()
        db = make_inventory(workdir / "ws-db", database_rows)
        report["database_rows"], report["database_seconds"] = database_rows, time.perf_counter() - started
        for name, how in (("read_sql", "read_sql"), ("frame_cold", "cold"), ("frame_warm", "warm")):
            report[name] = _child(_LOAD_CHILD, str(db), how)
    report["targets"] = _targets(report)
    return report


def _targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    nb = r["notebooks"]
    floor, one = nb["floor"]["seconds"], nb["notebook_1m"]["seconds"]
    worst = max(r["views"].values(), key=lambda v: v["peak_rss_mb"])
    targets = []
    if "read_sql" in r:
        targets.append({"target": "typed frame (from the snapshot) >= 4x faster than plain pd.read_sql",
                        "measured": f"{r['read_sql']['seconds'] / r['frame_warm']['seconds']:.1f}x",
                        "met": r["read_sql"]["seconds"] >= 4 * r["frame_warm"]["seconds"]})  # fmt: skip
    targets.append({"target": f"notebook <= 3 x papermill floor, at {r['notebook_rows_1m']:,} rows (notebook 70 "
                              "loads no frame of every certificate now)",
                    "measured": f"{one:.2f} s vs {3 * floor:.2f} s", "met": one <= 3 * floor})  # fmt: skip
    if "read_sql" in r:
        peaks = r["frame_cold"]["peak_rss_mb"], r["frame_warm"]["peak_rss_mb"]
        targets.append({"target": "peak memory <= 1.5 GB (the typed frame from the database, and from the snapshot)",
                        "measured": f"{peaks[0]:.0f} / {peaks[1]:.0f} MB", "met": max(peaks) <= 1536})  # fmt: skip
    targets += [
        {"target": f"notebook <= 3 x papermill floor + the frame load, at {r['notebook_rows_1m']:,} rows (the budget "
                   "as it was)",
         "measured": f"{one:.2f} s vs {3 * floor + r['frame_1m']['seconds']:.2f} s",
         "met": one <= 3 * floor + r["frame_1m"]["seconds"]},
        {"target": f"every view at {r['rows']:,} rows: peak RSS <= 2 GB",
         "measured": f"at most {worst['peak_rss_mb']:.0f} MB ({worst['view']})",
         "met": worst["peak_rss_mb"] <= MEMORY_MB},
    ]  # fmt: skip
    if "notebook_rows" in nb:
        many = nb["notebook_rows"]["seconds"]
        targets.append({"target": f"notebook 70 at {r['rows']:,} rows <= 3 x its {r['notebook_rows_1m']:,}-row time",
                        "measured": f"{many:.2f} s vs {3 * one:.2f} s", "met": many <= 3 * one})  # fmt: skip
    return targets


def markdown(r: dict[str, Any]) -> str:
    nb = r["notebooks"]
    met = [t for t in r["targets"] if t["met"]]
    lines = [
        MARK,
        "## Inventory (synthetic rows)",
        "",
        f"`python -m bench.inventory --rows {r['rows']}`. {r['rows']:,} synthetic certificate rows "
        f"(`bench/synthetic.py`: no certificate behind any row, labelled synthetic in the snapshot's metadata) "
        f"written straight into a workspace's columnar snapshot with Arrow in {r['generate_seconds']:.0f} s "
        "(stamped in step with its database, which holds the two CAs), so that the views and notebook 70 read "
        "them through the workbench's own code paths. "
        f"**{len(met)} of {len(r['targets'])} targets met.**",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
    ]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in r["targets"]]
    lines += [
        "",
        f"Each view in a child process over {r['rows']:,} rows (`ceremony.record.views`: out of core, one record "
        "batch of the Arrow IPC snapshot at a time, only the columns it needs); seconds of the view itself, after "
        "opening the inventory (the small tables read, the snapshot checked in step):",
        "",
        "| view | seconds | open (s) | peak RSS (MB) | result rows |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name if name != 'selection' else 'typed frame of the revoked certificates (5 columns)'} | "
        f"{v['seconds']:.2f} | {v['open_seconds']:.2f} | {v['peak_rss_mb']:.0f} | {v['result_rows']:,} |"
        for name, v in r["views"].items()
    ]
    lines += [
        "",
        "Notebook 70, best of three interleaved runs in the benchmark's process (the kernel's peak RSS over the "
        f"largest inventory, from `RUSAGE_CHILDREN` of one more run in a child process: "
        f"{nb['kernel_peak_rss_mb']:.0f} MB):",
        "",
        "| run | seconds |",
        "|---|---:|",
        f"| papermill floor (a notebook that only takes its parameters) | {nb['floor']['seconds']:.2f} |",
        f"| notebook 70 over the two CAs alone (its cost whatever the rows) | {nb['notebook_cas']['seconds']:.2f} |",
        f"| notebook 70, {r['notebook_rows_1m']:,} rows | {nb['notebook_1m']['seconds']:.2f} |",
        f"| notebook 70, {r['notebook_rows_1m']:,} rows, `-p export parquet` (every row written, streamed) | "
        f"{nb['notebook_1m_export']['seconds']:.2f} |",
    ]
    if "notebook_rows" in nb:
        lines.append(f"| notebook 70, {r['rows']:,} rows | {nb['notebook_rows']['seconds']:.2f} |")
    lines += [
        "",
        f"For the old budget: the typed frame of every certificate from the {r['notebook_rows_1m']:,}-row snapshot "
        f"loads in {r['frame_1m']['seconds']:.2f} s (peak RSS {r['frame_1m']['peak_rss_mb']:.0f} MB); notebook 70 "
        "no longer loads it, so its budget is now 3 x the floor alone, the old one shown beside it. Over the two CAs "
        f"alone the notebook already takes {nb['notebook_cas']['seconds'] / nb['floor']['seconds']:.1f} x the floor "
        "(its imports, the calendar's and five figures at 110 dpi, none of which depends on the rows): the 1M "
        f"rows add {nb['notebook_1m']['seconds'] - nb['notebook_cas']['seconds']:.2f} s to that.",
    ]
    if "read_sql" in r:
        lines += [
            "",
            f"Through the database: {r['database_rows']:,} synthetic rows inserted into SQLite (`make_inventory`) in "
            f"{r['database_seconds']:.0f} s; each load in a child process:",
            "",
            "| load | seconds | peak RSS (MB) |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {label} | {r[key]['seconds']:.2f} | {r[key]['peak_rss_mb']:.0f} |"
            for key, label in (
                ("read_sql", "plain `pd.read_sql` of the same columns"),
                ("frame_cold", "typed frame, snapshot rebuilt from the database"),
                ("frame_warm", "typed frame from the columnar snapshot (Arrow IPC)"),
            )
        ]
    lines += [
        "",
        "The views tally dictionary codes with numpy batch by batch (pyarrow reads only the fields asked for); "
        "`devices_missing_usage` keeps each valid device certificate as its EUI-64 read as an integer and a usage "
        "flag, about 9 bytes a row. Against DuckDB 2.0 over the same 10M rows (measured once, in issue O's report: "
        "over this snapshot through a pyarrow dataset, and over a Parquet copy), the Arrow views were faster or level "
        "for four of seven views and DuckDB over Parquet for three (the small group-bys, and `orphans`, where it reads "
        "only the serials of the rows it keeps), all well inside 2 GB either way; Arrow needs neither a second "
        "snapshot format nor a new dependency.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-rows", type=int, help="default: --rows, up to 1M; 0: skip the database loads")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", help="replace the inventory section of this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        report = run(args.rows, Path(tmp), database_rows=args.database_rows)
    from bench.docs import report as write_report

    return write_report(args, MARK, report, markdown)


if __name__ == "__main__":
    sys.exit(main())
