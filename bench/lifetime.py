"""A PKI's lifetime simulated: ``python -m bench.lifetime --years N [--seed S] [--json]``.

Drives one workspace through N years (tests/lifetime/engine.py): every ceremony rehearsed then run, daily
work opened from custodians' shares, device batches, CRLs and the ARL, revocations, rotations, register
changes, incidents and an evidence pack each year. Checks what must hold after every step, and compares each
year's verdict and findings with the golden file (tests/lifetime/golden/seed-<S>.json). Prints a line per
year (verdict, findings, steps, seconds), or with ``--json`` one object: ``assessments`` [{date, verdict,
fatal, findings}], ``steps``, timings. Exit 0 when every step held and every year matched; 1 when a step
broke something (the message names the step and the control) or a year differs from the golden file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "lifetime" / "golden"


def golden_path(seed: int) -> Path:
    return GOLDEN / f"seed-{seed}.json"


def compare(result: dict[str, Any], golden: list[dict[str, Any]]) -> list[str]:
    """What differs between the simulated years and the golden ones (the years both have)."""
    problems = []
    for got, want in zip(result["assessments"], golden, strict=False):
        for key in ("date", "verdict", "fatal"):
            if got[key] != want[key]:
                problems.append(f"assessment {got['date']}: {key} is {got[key]!r}, the golden file says {want[key]!r}")
        extra = sorted(set(got["findings"]) - set(want["findings"]))
        missing = sorted(set(want["findings"]) - set(got["findings"]))
        problems += [f"assessment {got['date']}: new finding {f}" for f in extra]
        problems += [f"assessment {got['date']}: expected finding gone: {f}" for f in missing]
    if len(golden) < len(result["assessments"]):
        problems.append(f"the golden file has {len(golden)} years; the simulation ran {len(result['assessments'])}")
    return problems


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from tests.lifetime.engine import BREAKS, Lifetime, SimulationFailure

    parser = argparse.ArgumentParser(prog="python -m bench.lifetime", description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--devices-per-month", type=int, default=1, help="new devices each month (the fleet's scale)")
    parser.add_argument("--break", dest="breaks", choices=sorted(BREAKS), help="do one thing wrong on purpose")
    parser.add_argument("--keep", type=Path, help="simulate in this new directory and keep it (default: a temp dir)")
    parser.add_argument("--write-golden", action="store_true", help="write the years run as the golden file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.years <= 30:
        parser.error(f"--years must be between 1 and 30 (got {args.years})")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep: {args.keep} exists; name a new directory")
    golden_file = golden_path(args.seed)
    if not args.write_golden and not args.breaks:
        try:
            golden = json.loads(golden_file.read_text())["assessments"] if golden_file.is_file() else []
        except (ValueError, KeyError, TypeError):
            parser.error(f"{golden_file.relative_to(REPO)} is not a golden file (JSON with 'assessments')")
        if len(golden) < args.years:
            have = f"has {len(golden)} years" if golden_file.is_file() else "does not exist"
            parser.error(f"--years {args.years} --seed {args.seed}: {golden_file.relative_to(REPO)} {have}; "
                         "add --write-golden to write the years run as the golden file")  # fmt: skip

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="lifetime-") as scratch:
        base = args.keep or Path(scratch)
        sim = Lifetime(base, years=args.years, seed=args.seed, devices_per_month=args.devices_per_month,
                       breaks=args.breaks, say=say)  # fmt: skip
        try:
            result = sim.run()
        except SimulationFailure as exc:
            print(f"lifetime: FAILED after {sim.steps} steps: {exc}", file=sys.stderr)
            return 1
    result["seed"] = args.seed
    if args.write_golden:
        years = [{k: a[k] for k in ("date", "verdict", "fatal", "findings")} for a in result["assessments"]]
        golden_file.write_text(json.dumps({"seed": args.seed, "assessments": years}, indent=1) + "\n")
    golden = json.loads(golden_file.read_text())["assessments"] if golden_file.is_file() else []
    problems = compare(result, golden) if golden else [f"no golden file {golden_file}"]
    result["golden"] = {"file": str(golden_file.relative_to(REPO)), "matches": not problems, "differences": problems}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for a in result["assessments"]:
            print(f"{a['date']}  {a['verdict']:<24} fatal {a['fatal']}  findings {len(a['findings']):>3}  "
                  f"pack and checks {a['seconds']:>5.1f} s")  # fmt: skip
        print(f"{result['steps']} steps, {result['devices']} devices, {result['runtime_seconds']} s "
              f"(per year: {', '.join(f'{s:.0f}' for s in result['year_seconds'])} s)")  # fmt: skip
    for problem in problems:
        print(f"lifetime: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
