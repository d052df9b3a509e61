"""Evidence-pack benchmark: an inventory of real signed certificates, then ``build_pack`` with the time of
each stage.

    python -m bench.evidence [--certificates 100000] [--json] [--markdown docs/benchmarks.md]

The workspace (software key store, root and issuing CA, the example register with attestation keys) is
filled by one batch of device certificates issued from fresh CSRs with two workers, as in the issuance
benchmark. The pack's checks verify every signature and lint every certificate in worker processes;
the inventory controls work on the frames. With --markdown the "Evidence pack" section is replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARK = "<!-- evidence benchmark -->"


def run(certificates: int, workdir: Path, *, pdf: bool = True) -> dict[str, Any]:
    from bench.fleet import make_device_csrs
    from ceremony.cli.demo import demo_register
    from ceremony.issue.batch import issue_batch
    from ceremony.issue.single import create_ca
    from ceremony.record.workspace import init_workspace
    from ceremony.reporting.evidence import build_pack
    from ceremony.reporting.pdf import available_renderers

    report: dict[str, Any] = {"certificates": certificates, "cores": len(os.sched_getaffinity(0))}
    started = time.perf_counter()
    devices = make_device_csrs(workdir / "csrs", certificates)
    report["csrs_seconds"] = time.perf_counter() - started
    ws = init_workspace(workdir / "ws", key_store="software", purpose="test")
    demo_register(ws)
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Bench Root", approved_by="alice")
    create_ca(ws, "issuing", profile_name="ss1spca-issuing", common_name="Bench Issuing", approved_by="alice",
              issuer_ca="root")  # fmt: skip
    started = time.perf_counter()
    result = issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
                         progress=False, jobs=2)  # fmt: skip
    report["issue_seconds"] = time.perf_counter() - started
    report["issued"] = result.issued_now
    pdf = pdf and bool(available_renderers())
    started = time.perf_counter()
    pack = build_pack(ws, reports=workdir / "reports", person="victor", pdf=pdf)
    report["pack_seconds"] = time.perf_counter() - started
    report["stages"] = pack.stages
    report["verdict"] = pack.verdict
    report["pdf"] = pdf
    ws.close()
    return report


def markdown(r: dict[str, Any]) -> str:
    lines = [
        MARK,
        "## Evidence pack",
        "",
        f"`ceremony evidence build` over {r['issued']:,} real signed device certificates (issued from fresh CSRs in "
        f"{r['issue_seconds']:.0f} s with two workers) on {r['cores']} cores: {r['pack_seconds']:.1f} s in all"
        f"{'' if r['pdf'] else ' (no PDF renderer here: PDFs skipped)'}.",
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {stage} | {seconds:.2f} |" for stage, seconds in r["stages"].items()]
    lines += [
        "",
        "The first checks stage is one pass over every certificate in worker processes: its signature under",
        "its issuer (CRT-09), the profile lint (CRT-01) and its public key's hash (CRT-07). The linter reads each",
        "certificate's DER, so that pass is per certificate by nature; every other control works on whole frames",
        "(or per ceremony, CRL or register entry), with no per-certificate Python loop.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence", description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", help="replace the evidence section of this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        report = run(args.certificates, Path(tmp))
    from bench.docs import report as write_report

    return write_report(args, MARK, report, markdown)


if __name__ == "__main__":
    sys.exit(main())
