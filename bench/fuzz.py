"""A longer fuzzing campaign than the tests run: hypothesis over CSR intake, ceremony files, device lists,
transcript verification and evidence-pack verification. Each target may only ever raise a CeremonyError
(or, for the verifiers, report a failure); anything else stops the campaign with the failing input.

    python -m bench.fuzz [--examples 5000] [--markdown docs/security.md]

With --markdown the "Fuzzing campaign" section of the file (between its markers) is replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

START, END = "<!-- fuzz campaign -->", "<!-- /fuzz campaign -->"
EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8)


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


def _campaign(name: str, examples: int, strategy: Any, body: Callable[[Any], None]) -> dict[str, Any]:
    count = 0

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        nonlocal count
        count += 1
        body(value)

    started = time.perf_counter()
    run()
    return {"target": name, "cases": count, "seconds": time.perf_counter() - started}


def campaign(examples: int, workdir: Path) -> list[dict[str, Any]]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ceremony.compliance.pack import verify_pack
    from ceremony.errors import CeremonyError
    from ceremony.issue.batch import read_device_list, validate_row
    from ceremony.model.ceremony_file import load_ceremony
    from ceremony.model.config import data_dir
    from ceremony.model.csr import parse_csr
    from ceremony.model.events import Deviation
    from ceremony.model.profiles import get_profile
    from ceremony.record.transcript import Journal, verify_transcript

    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    good_csr = csr.public_bytes(serialization.Encoding.DER)
    profile = get_profile("ss1sp-device", {})
    ceremony = (data_dir() / "ceremonies" / "root-ca.yaml").read_bytes()
    journal = Journal(workdir / "log.jsonl")
    for n in range(5):
        journal.append(Deviation(what="x" * n, why=str(n), acknowledged_by=[]))
    log = journal.path.read_bytes()
    (workdir / "pack").mkdir()
    (workdir / "pack" / "a.txt").write_text("evidence")
    manifest = json.dumps({"files": [{"path": "a.txt", "sha256": "0" * 64, "size": 8}]}).encode()

    def csr_intake(edits: list[tuple[int, int]]) -> None:
        try:
            parse_csr(_mutate(good_csr, edits), profile, "fuzz")
        except CeremonyError:
            pass

    def ceremony_file(edits: list[tuple[int, int]]) -> None:
        path = workdir / "ceremony.yaml"
        path.write_bytes(_mutate(ceremony, edits))
        try:
            load_ceremony(path)
        except CeremonyError:
            pass

    def device_list(text: str) -> None:
        path = workdir / "devices.csv"
        path.write_text("eui64,usage,csr\n" + text, encoding="utf-8")
        try:
            rows = list(read_device_list(path).rows())
        except CeremonyError:
            return
        for row in rows:
            validate_row(str(workdir), row, ca_point=None)

    def transcript(edits: list[tuple[int, int]]) -> None:
        path = workdir / "t.jsonl"
        path.write_bytes(_mutate(log, edits))
        verify_transcript(path)

    def pack(edits: list[tuple[int, int]]) -> None:
        (workdir / "pack" / "manifest.json").write_bytes(_mutate(manifest, edits))
        try:
            assert not verify_pack(workdir / "pack").ok
        except CeremonyError:
            pass

    text = st.text(alphabet=st.sampled_from("0123456789ABCDEFabcdef,./\\\n -_dskacsr\"'"), max_size=400)
    return [
        _campaign("CSR intake (byte edits of a good CSR)", examples, EDITS, csr_intake),
        _campaign("ceremony files (byte edits of root-ca.yaml)", examples, EDITS, ceremony_file),
        _campaign("device lists (random CSV text)", examples, text, device_list),
        _campaign("transcript verification (byte edits of a log)", examples, EDITS, transcript),
        _campaign("evidence-pack verification (byte edits of a manifest)", examples, EDITS, pack),
    ]


def markdown(results: list[dict[str, Any]], examples: int) -> str:
    lines = [START, "### Fuzzing campaign (`python -m bench.fuzz`)", "",
             f"Hypothesis, up to {examples:,} cases per target; each passed or raised a CeremonyError.", "",
             "| target | cases | seconds |", "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {r['target']} | {r['cases']:,} | {r['seconds']:.1f} |" for r in results]
    return "\n".join([*lines, "", END]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--markdown", help="replace the fuzzing section of this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        results = campaign(args.examples, Path(tmp))
    text = markdown(results, args.examples)
    if args.markdown:
        path = Path(args.markdown)
        doc = path.read_text(encoding="utf-8")
        head, _, rest = doc.partition(START)
        _, _, tail = rest.partition(END)
        path.write_text(head + text.rstrip("\n") + tail, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
