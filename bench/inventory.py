"""Inventory benchmark: 1M synthetic certificate rows as a typed DataFrame, and the explorer notebook over them.

    python -m bench.inventory [--rows 1000000] [--json] [--markdown docs/benchmarks.md]

Measured in one run: plain ``pd.read_sql`` of the certificate columns from the SQLite store, the
typed frame built from the database (rebuilding the Parquet snapshot) and read from the snapshot,
each in a child process with its peak RSS; then the papermill floor (a notebook that only takes its
parameters) and notebook 70 over the same rows. With --markdown the "Inventory" section of the file
is replaced (the issuance benchmark writes the rest).
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

_CHILD = """
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


def _child(root: Path, how: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), how], capture_output=True, text=True, check=True,
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


def run(rows: int, workdir: Path) -> dict[str, Any]:
    from bench.synthetic import make_inventory
    from ceremony.reporting.notebooks import run_notebook

    started = time.perf_counter()
    root = make_inventory(workdir / "ws", rows)
    report: dict[str, Any] = {"rows": rows, "generate_seconds": time.perf_counter() - started}
    report["read_sql"] = _child(root, "read_sql")
    report["frame_cold"] = _child(root, "cold")
    report["frame_warm"] = _child(root, "warm")
    floor = _floor_notebook(workdir / "floor.ipynb")
    notebook = REPO / "notebooks" / "70-inventory-explorer.ipynb"
    runs: dict[str, list[float]] = {"floor": [], "notebook": [], "notebook_export": []}
    for rep in range(3):  # interleaved, best of three: the machine is shared
        views = {"workspace": str(root), "as_of": "2026-11-24"}
        for name, path, params in (
            ("floor", floor, {"workspace": str(root)}),
            ("notebook", notebook, {**views, "out_dir": str(workdir / f"o{rep}")}),
            ("notebook_export", notebook, {**views, "out_dir": str(workdir / f"e{rep}"), "export": "parquet"}),
        ):
            started = time.perf_counter()
            run_notebook(path, params, reports_dir=workdir / "reports", progress=False)
            runs[name].append(time.perf_counter() - started)
    report["papermill_floor_seconds"] = min(runs["floor"])
    report["notebook_seconds"] = min(runs["notebook"])
    report["notebook_export_seconds"] = min(runs["notebook_export"])
    budget = 3 * report["papermill_floor_seconds"] + report["frame_warm"]["seconds"]
    report["targets"] = [
        {"target": "typed frame >= 4x faster than plain pd.read_sql",
         "measured": f"{report['read_sql']['seconds'] / report['frame_warm']['seconds']:.1f}x",
         "met": report["read_sql"]["seconds"] >= 4 * report["frame_warm"]["seconds"]},
        {"target": "notebook <= 3 x papermill floor + frame load",
         "measured": f"{report['notebook_seconds']:.1f} s vs {budget:.1f} s",
         "met": report["notebook_seconds"] <= budget},
        {"target": "peak memory <= 1.5 GB (frame from the database, and from the snapshot)",
         "measured": f"{report['frame_cold']['peak_rss_mb']:.0f} / {report['frame_warm']['peak_rss_mb']:.0f} MB",
         "met": max(report["frame_cold"]["peak_rss_mb"], report["frame_warm"]["peak_rss_mb"]) <= 1536},
    ]  # fmt: skip
    return report


def markdown(r: dict[str, Any]) -> str:
    lines = [
        MARK,
        "## Inventory (synthetic rows)",
        "",
        f"{r['rows']:,} synthetic certificate rows (`bench/synthetic.py`: no signatures, labelled synthetic), "
        f"generated into a SQLite workspace in {r['generate_seconds']:.0f} s. Each load ran in a child process.",
        "",
        "| load | seconds | peak RSS (MB) |",
        "|---|---:|---:|",
        f"| plain `pd.read_sql` of the same columns | {r['read_sql']['seconds']:.2f} | "
        f"{r['read_sql']['peak_rss_mb']:.0f} |",
        f"| typed frame, snapshot rebuilt from the database | {r['frame_cold']['seconds']:.2f} | "
        f"{r['frame_cold']['peak_rss_mb']:.0f} |",
        f"| typed frame from the columnar snapshot (Arrow IPC) | {r['frame_warm']['seconds']:.2f} | "
        f"{r['frame_warm']['peak_rss_mb']:.0f} |",
        "",
        "Best of three interleaved runs: papermill floor (a notebook that only takes its parameters): "
        f"{r['papermill_floor_seconds']:.2f} s; notebook 70 over the same rows: {r['notebook_seconds']:.2f} s "
        f"(plots and tables), {r['notebook_export_seconds']:.2f} s with `-p export parquet` (every row written).",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
    ]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in r["targets"]]
    lines += [
        "",
        "The notebook's own work is what the floor leaves out: importing pandas, matplotlib and the package",
        "(about 0.8 s), loading the frames (the snapshot is an Arrow IPC file, mapped and handed to pandas",
        "without decoding strings), eight vectorised views and four figures saved at 110 dpi. Writing every row",
        "as Parquet is opt-in (`export`); its cost is the difference between the two notebook figures.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", help="replace the inventory section of this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        report = run(args.rows, Path(tmp))
    from bench.docs import report as write_report

    return write_report(args, MARK, report, markdown)


if __name__ == "__main__":
    sys.exit(main())
