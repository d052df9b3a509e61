"""Lint benchmark: the workbench's profile lint against pkilint on the same certificates, one core, in process.

    python -m bench.lint [--certificates 20000] [--pkilint-sample 1000] [--json] [--markdown docs/benchmarks.md]

Two sets of certificates:
- a batch of the workbench's own device certificates, issued by ``issue_batch`` from fresh CSRs on a software
  store (real signatures): the template path (``check_certificates``) lints the whole batch, the full lint
  (``check_certificate`` one by one) and pkilint's RFC 5280 certificate validator a sample of it;
- the 435 real DCC test certificates (../shared/vectors/smki-test), not built from our template: the full path
  (through ``check_certificates``, which falls back to the full lint) and pkilint over all of them.

Each figure is certificates per second on one core (this process), best of three interleaved rounds, without
the issuer (pkilint checks no signature either). The template path's findings are compared with the full
lint's on the sample, so a fast wrong answer cannot pass as a figure. With --markdown the "Lint" section of
the file is replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MARK = "<!-- lint benchmark -->"
VECTORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "vectors" / "smki-test"
ROUNDS = 3


def _batch(certificates: int, workdir: Path) -> tuple[list[bytes], Any, float]:
    """(DER of every device certificate of one real batch, the profile, seconds to issue it)."""
    from bench.fleet import make_device_csrs
    from ceremony.cli.demo import demo_register
    from ceremony.issue.batch import issue_batch
    from ceremony.issue.single import create_ca
    from ceremony.model.profiles import get_profile
    from ceremony.record.workspace import init_workspace

    devices = make_device_csrs(workdir / "csrs", certificates)
    ws = init_workspace(workdir / "ws", key_store="software", purpose="test")
    demo_register(ws)
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Bench Root", approved_by="alice")
    create_ca(ws, "issuing", profile_name="ss1spca-issuing", common_name="Bench Issuing", approved_by="alice",
              issuer_ca="root")  # fmt: skip
    started = time.perf_counter()
    issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
                progress=False, jobs=2)  # fmt: skip
    seconds = time.perf_counter() - started
    ders = [r.der for r in ws.inventory.signed_certificates(["issuing"]) if r.profile == "ss1sp-device"]
    profile = get_profile("ss1sp-device", ws.config.oids)
    ws.close()
    return ders, profile, seconds


def _vectors() -> dict[str, list[bytes]]:
    from asn1crypto import pem

    out: dict[str, list[bytes]] = {}
    for path in sorted(VECTORS.rglob("*.pem")):
        kind = path.relative_to(VECTORS).parts[0]
        out.setdefault(kind, []).append(bytes(pem.unarmor(path.read_bytes())[2]))
    return out


def _pkilint() -> Callable[[bytes], int]:
    """pkilint's RFC 5280 certificate validator (as its lint_pkix_cert command builds it): DER → finding count."""
    from pkilint import loader, report
    from pkilint.pkix import certificate, extension, name

    validator = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    documents = loader.RFC5280CertificateDocumentLoader()

    def lint(der: bytes) -> int:
        return int(report.get_findings_count(validator.validate(documents.load_der_document(der, "bench").root), None))

    return lint


def _rate(work: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def _best(measures: dict[str, tuple[Callable[[], object], int]]) -> dict[str, float]:
    """Certificates per second of each measure: the best of ROUNDS rounds, the measures interleaved."""
    best = dict.fromkeys(measures, 0.0)
    for _ in range(ROUNDS):
        for key, (work, count) in measures.items():
            best[key] = max(best[key], _rate(work, count))
    return best


def _same(ders: Sequence[bytes], profile: Any) -> tuple[bool, int]:
    from ceremony.lint.certificate import check_certificate
    from ceremony.lint.template import check_certificates

    subjects = [str(n) for n in range(len(ders))]
    linted = check_certificates(ders, profile, subjects=subjects)
    full = [check_certificate(d, profile, subject=s) for d, s in zip(ders, subjects, strict=True)]
    return linted.findings == full, linted.templated


def run(certificates: int, sample: int, workdir: Path) -> dict[str, Any]:
    from ceremony.lint.certificate import check_certificate
    from ceremony.lint.template import check_certificates
    from ceremony.model.profiles import get_profile

    ders, profile, issue_seconds = _batch(certificates, workdir)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, after the batch's two workers
    part = ders[:sample]
    pkilint = _pkilint()
    same, templated = _same(part, profile)
    whole = check_certificates(ders, profile)
    batch = _best({
        "pkilint_per_s": (lambda: [pkilint(d) for d in part], len(part)),
        "full_per_s": (lambda: [check_certificate(d, profile) for d in part], len(part)),
        "template_per_s": (lambda: check_certificates(ders, profile), len(ders)),
    })  # fmt: skip
    report: dict[str, Any] = {
        "certificates": len(ders),
        "sample": len(part),
        "issue_seconds": issue_seconds,
        "templated": whole.templated,
        "same_findings_on_sample": same,
        "templated_in_sample": templated,
        **batch,
        "template_vs_pkilint": batch["template_per_s"] / batch["pkilint_per_s"],
        "full_vs_pkilint": batch["full_per_s"] / batch["pkilint_per_s"],
        "template_vs_full": batch["template_per_s"] / batch["full_per_s"],
    }
    vectors = _vectors() if VECTORS.is_dir() else {}
    if vectors:
        dcc = [d for group in vectors.values() for d in group]
        profiles = {"device": get_profile("smki-device"), "organisation": get_profile("smki-organisation")}
        groups = [(group, profiles.get(kind, profiles["organisation"])) for kind, group in vectors.items()]
        rates = _best({
            "pkilint_per_s": (lambda: [pkilint(d) for d in dcc], len(dcc)),
            "full_per_s": (lambda: [check_certificate(d, p) for g, p in groups for d in g], len(dcc)),
            "batched_per_s": (lambda: [check_certificates(g, p) for g, p in groups], len(dcc)),
        })  # fmt: skip
        report["dcc"] = {
            "certificates": len(dcc),
            "templated": sum(check_certificates(g, p).templated for g, p in groups),
            **rates,
            "full_vs_pkilint": rates["full_per_s"] / rates["pkilint_per_s"],
            "batched_vs_pkilint": rates["batched_per_s"] / rates["pkilint_per_s"],
        }
    else:
        report["dcc"] = {"skipped": f"real SMKI test vectors not found at {VECTORS.resolve()}"}
    report["target_met"] = report["template_vs_pkilint"] >= 100 and same
    return report


def markdown(r: dict[str, Any]) -> str:
    lines = [
        MARK,
        "## Profile lint",
        "",
        f"`python -m bench.lint`: one core, in process, certificates per second (best of {ROUNDS} interleaved rounds),",
        "no issuer (pkilint checks no signature). pkilint is its RFC 5280 certificate validator, as its",
        "`lint_pkix_cert` command builds it.",
        "",
        f"A real batch of {r['certificates']:,} workbench device certificates (issued from fresh CSRs in "
        f"{r['issue_seconds']:.1f} s with two workers): the template path over all of them, "
        f"{r['templated']:,} on the template path (the rest are each template's exemplar, fully linted); the full",
        f"lint and pkilint over the first {r['sample']:,}. Template findings equal the full lint's on that sample: "
        f"{'yes' if r['same_findings_on_sample'] else '**no**'}.",
        "",
        "| certificates | pkilint /s | ours, full lint /s | ours, template path /s | full vs pkilint "
        "| template vs pkilint |",
        "|---|---:|---:|---:|---:|---:|",
        f"| workbench batch | {r['pkilint_per_s']:,.0f} | {r['full_per_s']:,.0f} | {r['template_per_s']:,.0f} | "
        f"{r['full_vs_pkilint']:.1f}x | {r['template_vs_pkilint']:.0f}x |",
    ]
    dcc = r["dcc"]
    if "skipped" in dcc:
        lines += ["", f"DCC test certificates: {dcc['skipped']}."]
    else:
        lines += [
            f"| {dcc['certificates']} DCC test certificates | {dcc['pkilint_per_s']:,.0f} | {dcc['full_per_s']:,.0f} "
            f"| {dcc['batched_per_s']:,.0f} | {dcc['full_vs_pkilint']:.1f}x | {dcc['batched_vs_pkilint']:.0f}x |",
            "",
            f"DCC's test certificates are not built from the workbench's template, but {dcc['templated']} of the "
            f"{dcc['certificates']} share DCC's own (each device certificate differs from the others only in its "
            "serial, "
            "key, SKI and EUI-64), so the template path finds it; the full-lint column is every certificate through "
            "`check_certificate`.",
        ]
    met = "yes" if r["target_met"] else "**no**"
    lines += [
        "",
        "| target | measured | met |",
        "|---|---:|---|",
        f"| template path >= 100 x pkilint on templated certificates | {r['template_vs_pkilint']:.0f}x | {met} |",
        "",
        "The template path compares each certificate's tbsCertificate with its template's exemplar as one numpy",
        "array (bytes outside the serial, validity, point, SKI and EUI-64 must be equal), then decides the checks",
        "that read those fields by vectorised rules; anything that does not match, or that a rule flags, takes the",
        "full lint (`tests/lint/test_template.py` holds both paths to the same findings).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lint", description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=20_000, help="the batch's size (default 20000)")
    parser.add_argument("--pkilint-sample", type=int, default=1000, help="how many of it pkilint lints")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", help="replace the lint section of this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        report = run(args.certificates, args.pkilint_sample, Path(tmp))
    from bench.docs import report as write_report

    return write_report(args, MARK, report, markdown)


if __name__ == "__main__":
    sys.exit(main())
