"""`ceremony checks …` and `ceremony evidence …`: the compliance side of the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ceremony.cli.common import REPORTS_HELP


def cmd_checks_list(args: argparse.Namespace) -> int:
    from ceremony.compliance.controls import CHECKS
    from ceremony.model.catalogue import load_catalogue

    catalogue = load_catalogue()
    if args.json:
        print(json.dumps([c.model_dump() | {"registered": c.id in CHECKS} for c in catalogue.controls], indent=1))
        return 0
    print(f"S1SPKM control catalogue {catalogue.version}: {len(catalogue.controls)} controls")
    for c in catalogue.controls:
        scope = "+".join(c.applies_to)
        print(f"{c.id}  {c.severity:<8} {scope:<13} {c.title}  [{c.policy_ref}]")
    return 0


def cmd_checks_run(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened
    from ceremony.compliance.assessment import run_checks, verdict
    from ceremony.compliance.sources import Evidence
    from ceremony.model.catalogue import load_catalogue
    from ceremony.reporting.evidence import parse_period

    since, until = parse_period(args.period)
    with opened(args, assessing=True) as ws:
        reports = Path(args.reports) if args.reports else ws.reports_dir
        ev = Evidence(ws, since=since, until=until, pack_folders=(reports / "evidence",))
        if until is not None:
            ev.as_of = until
        findings = run_checks(load_catalogue(), ev)
        result = verdict(findings, ev.policy.compliance.verdict)
    shown = [f for f in findings if args.all or f.outcome not in ("pass", "not-applicable")]
    if args.json:
        print(json.dumps({"workspace_purpose": ws.config.purpose, "verdict": result.verdict, "because": result.because,
                          "counted": result.counted,
                          "findings": [f.to_json() for f in shown]}, indent=1))  # fmt: skip
    else:
        for f in shown:
            waived = " (waived)" if f.waived else ""
            print(f"{f.id}  {f.outcome}{waived}  {f.subject + ': ' if f.subject else ''}{f.message}")
        counted = ", ".join(f"{k} {n}" for k, n in sorted(result.counted.items()))
        mark = "" if ws.live else f" - {ws.mark}"
        print(f"verdict: {result.verdict}{mark} ({result.because}); {counted}")
    return 0 if result.verdict == "approved" else 1


def cmd_evidence_build(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened
    from ceremony.keys.personal import token_ref
    from ceremony.reporting.evidence import build_pack

    with opened(args, assessing=True) as ws:
        token = token_ref(args.token, args.module, args.softhsm_conf) if args.token is not None else None
        result = build_pack(ws, reports=Path(args.reports) if args.reports else None, period=args.period,
                            person=args.as_person,
                            key_path=Path(args.key) if args.key else None, token=token,
                            pdf=not args.no_pdf)  # fmt: skip
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"evidence pack {result.directory}")
        print(f"verdict: {result.summary}")
        print(f"manifest signed by {result.signer}; SHA-256 {result.fingerprint}")
        for line in result.report_lines():
            print(line)
        for line in result.timestamp_lines():
            print(line)
        print(f"read aloud: {result.words}")
    return 0


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    from ceremony.compliance.pack import verify_pack

    report = verify_pack(Path(args.directory), Path(args.trust) if args.trust else None)
    print(report.message)
    if report.report_signature:
        print(report.report_signature)
    for line in report.timestamps:
        print(line)
    if report.words:
        print(f"manifest read aloud: {report.words}")
    contradicted = None
    if args.against is not None and report.ok:
        from ceremony.compliance.anchors import pack_against_journal

        contradicted = pack_against_journal(Path(args.directory), Path(args.against))
        print(contradicted or f"the journal of {args.against} extends the journal this pack carries")
    return 0 if report.ok and report.signer_established and contradicted is None else 1


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("checks", help="the S1SPKM control catalogue and its checks")
    checks = p.add_subparsers(dest="checks_command", required=True)
    c = checks.add_parser("list", help="print the control catalogue")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_checks_list)
    c = checks.add_parser("run", help="run every check on the workspace; exit 1 unless the verdict is approved")
    c.add_argument("--period", metavar="FROM..TO", help="assess events in these dates (inclusive)")
    c.add_argument("--all", action="store_true", help="show passes and not-applicable findings too")
    c.add_argument(
        "--reports", help="reports directory whose earlier packs the journal must extend (default: <workspace>/reports)"
    )
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_checks_run)

    p = sub.add_parser("evidence", help="build or verify a signed evidence pack")
    evidence = p.add_subparsers(dest="evidence_command", required=True)
    e = evidence.add_parser("build", help="checks, report PDF, signed manifest in <workspace>/reports/evidence/<UTC>/")
    e.add_argument("--period", metavar="FROM..TO", help="assess events in these dates (inclusive)")
    e.add_argument("--as", dest="as_person", metavar="PERSON", help="the compliance officer who signs (register id)")
    signing = e.add_mutually_exclusive_group()
    signing.add_argument(
        "--key", help="their private key file, for trying the tool (default: <workspace>/secrets/attestation/ID.key)"
    )
    signing.add_argument("--token", metavar="LABEL", help="sign with the key on their own PKCS#11 token")
    e.add_argument("--module", help="the PKCS#11 module of the token --token names (default: SoftHSM2)")
    e.add_argument("--softhsm-conf", help="the softhsm2.conf of the SoftHSM2 token --token names")
    e.add_argument("--reports", help=REPORTS_HELP)
    e.add_argument("--no-pdf", action="store_true", help="skip the PDFs (the report notebook still runs)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evidence_build)
    e = evidence.add_parser("verify", help="check every hash and the signature; exit 1 naming the first mismatch")
    e.add_argument("directory")
    e.add_argument("--trust", metavar="PUBKEY", help="the officer's published public key (PEM)")
    e.add_argument("--against", metavar="WORKSPACE", help="also check that this workspace's journal extends the pack's")
    e.set_defaults(func=cmd_evidence_verify)
