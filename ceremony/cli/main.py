"""The `ceremony` command line: parses arguments and calls the package; catches only CeremonyError."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ceremony.cli.common import DATABASE_HELP, Parser, opened, print_json, register_path, workspace_dir
from ceremony.clock import current
from ceremony.errors import CeremonyError, InputError

if TYPE_CHECKING:
    pass


def cmd_init(args: argparse.Namespace) -> int:
    from ceremony.record.workspace import init_workspace

    ws = init_workspace(
        workspace_dir(args),
        key_store=args.key_store,
        token_label=args.token_label,
        initialise_token=False if args.no_token else None,
        database=args.database,
        purpose=args.purpose,
    )
    kind = ws.config.key_store.kind
    print(
        f"workspace {ws.root} created with the {kind} key store"
        + ("" if kind == "pkcs11" else " (SOFTWARE: for trying the tool only; not a token)")
        + (f"; token {args.token_label!r} awaits its token-initialisation ceremony" if args.no_token or ws.live else "")
        + ("" if ws.live else f"; {ws.mark}")
    )
    ws.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ceremony.cli.demo import demo_workspace_dir, run_demo

    target = Path(args.workspace) if args.workspace else demo_workspace_dir(Path.cwd(), current().now())
    result = run_demo(target, devices=args.devices, database=args.database)
    print(f"DEMO WORKSPACE (not a live PKI): {result.workspace}", file=sys.stderr)
    if args.json:
        print_json(result.to_json())
    else:
        print(f"workspace:        {result.workspace}")
        print(f"key store:        {result.key_store}")
        for path in result.runs:
            print(f"{'ceremony run:':<18}{path}")
        print(
            f"{'transcripts:':<18}{len(result.transcripts)} sealed, attested by every participant with file keys "
            f"(for trying the tool only), in {result.workspace / 'transcripts'}"
        )
        for name, role, issued in result.cas:
            print(f"{role + ' CA:':<18}{name} serial {issued.record.serial} -> {issued.artifact}")
        for batch in result.batches:
            print(f"{'device batch:':<18}{batch['id']}: {batch['count']} certificates -> {batch['bundle']}")
        for crl in result.crls:
            print(f"{'CRL/ARL:':<18}{crl}")
        print(
            f"{'linted:':<18}{len(result.issued)} end-entity certificates written as files (organisation, batch "
            "sample), all clean"
        )
        print(f"inventory export: {result.inventory_export}")
        verdict = f"{result.verdict} - DEMO WORKSPACE, not a live PKI"
        print(f"{'evidence pack:':<18}{result.evidence_pack} (verdict: {verdict})")
        for pdf in result.pdfs[:1]:
            print(f"{'report PDF:':<18}{pdf}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from ceremony.issue.single import issue
    from ceremony.model.csr import normalise_eui64, normalise_role, read_csr
    from ceremony.model.tbs import Identity

    if args.devices:
        return _issue_batch(args)
    if len(args.csr) != 1:
        raise InputError(f"give exactly one CSR for single issuance (got {len(args.csr)})")
    if args.eui64 is None:
        raise InputError("--eui64 is required: the identity comes from the approved request, not the CSR")
    identity = Identity(
        eui64=normalise_eui64(args.eui64),
        usage=args.usage,
        role=normalise_role(args.role) if args.role is not None else None,
        name=args.name,
    )
    path = Path(args.csr[0])
    data = read_csr(path)
    with opened(args) as ws:
        key_store = ws.config.key_store.kind
        issued = issue(
            ws,
            ca_name=args.ca,
            profile_name=args.profile,
            csr=data,
            csr_source=str(path),
            identity=identity,
            approved_by=args.approved_by,
        )
    if args.json:
        print_json(
            {
                "serial": issued.record.serial,
                "profile": issued.record.profile,
                "certificate": str(issued.artifact),
                "fingerprint": issued.record.fingerprint,
            }
        )
    else:
        store = "" if key_store == "pkcs11" else " (CA key in the SOFTWARE store, not a token)"
        print(f"issued {issued.record.profile} serial {issued.record.serial} -> {issued.artifact}{store}")
    return 0


def _issue_batch(args: argparse.Namespace) -> int:
    from ceremony.issue.batch import issue_batch

    if args.csr or args.eui64 or args.usage or args.role or args.name:
        raise InputError("--devices takes the identities and CSRs from the list; give no CSR, --eui64, --usage")
    with opened(args) as ws:
        result = issue_batch(
            ws,
            ca_name=args.ca,
            profile_name=args.profile,
            devices=Path(args.devices),
            approved_by=args.approved_by,
            jobs=args.jobs,
            skip_rejected=Path(args.skip_rejected) if args.skip_rejected else None,
            rekey=args.rekey,
            sample_rate=args.sample_rate,
            say=lambda line: print(line, file=sys.stderr),
        )
    if args.json:
        print_json(result.to_json())
    else:
        print(
            f"batch {result.batch_id}: {result.issued} of {result.requested} issued "
            f"({result.issued_now} now, {result.issued_before} before), {len(result.rejected)} rejected; "
            f"bundle {result.bundle} (sha256 {result.bundle_sha256})"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from ceremony.issue.revocation import revoke

    with opened(args) as ws:
        done = revoke(
            ws,
            ca_name=args.ca,
            serial=args.serial,
            eui64=args.eui64,
            usage=args.usage,
            reason=args.reason,
            requested_by=args.requested_by,
            approved_by=args.approved_by,
        )
    if args.json:
        print_json({"revoked": [{"ca": r.issuer_ca, "serial": r.serial, "reason": r.reason} for r in done]})
    else:
        for r in done:
            print(f"revoked {r.serial} from {r.issuer_ca} ({r.reason}, {r.revoked_at})")
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    from ceremony.issue.crl import publish_crl

    with opened(args) as ws:
        done = publish_crl(ws, args.ca)
    if args.json:
        print_json(
            {
                "ca": done.ca,
                "kind": done.kind,
                "number": done.number,
                "entries": done.entries,
                "this_update": done.this_update.isoformat(),
                "next_update": done.next_update.isoformat(),
                "path": str(done.path),
                "sha256": done.sha256,
            }
        )
    else:
        print(
            f"{done.kind.upper()} {done.number} of {done.ca}: {done.entries} entries, next update "
            f"{done.next_update:%Y-%m-%d %H:%M}Z -> {done.path}"
        )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ceremony.issue.key_transfer import export_key, import_key, list_keys, overdue

    with opened(args) as ws:
        if args.keys_command == "list":
            rows = list_keys(ws)
            if args.json:
                print_json([row.__dict__ for row in rows])
                return 0
            for row in rows:
                kcv = f"KCV {row.kcv} ({row.kcv_method})"
                print(
                    f"{row.label:<18} {row.algorithm:<8} {kcv:<17} {row.purpose:<18} {row.state:<11} "
                    f"rotate by {row.rotation_due[:10]}  expires {row.expires_at[:10]}  {row.serves}"
                )
            return 0
        if args.keys_command == "overdue":
            flagged = overdue(ws)
            for row, why in flagged:
                print(f"{row.label}: {why}")
            if not flagged:
                print("no active key is past its rotation date or crypto-period")
            return 1 if flagged else 0
        if args.keys_command == "export":
            out = Path(args.out)
            if out.exists():
                raise InputError(f"{out} exists; exports never overwrite")
            digest = export_key(ws, args.label, args.kek, out)
            print(f"{args.label} wrapped under {args.kek} -> {out} (sha256 {digest})")
            return 0
        kcv = import_key(
            ws, Path(args.file), kek_label=args.kek, serves=args.serves, crypto_period_days=args.crypto_period_days,
            rotation_days=args.rotation_days, label=args.label,
        )  # fmt: skip
        print(f"imported {args.label or Path(args.file).stem} under {args.kek}: KCV {kcv} matches the file")
        return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from ceremony.lint.files import lint_paths
    from ceremony.lint.findings import Severity

    report = lint_paths([Path(p) for p in args.paths], args.profile)
    if args.json:
        print_json(report.to_json())
    else:
        # INFO findings (e.g. which profile a certificate was classified as) are in --json only.
        print(report.render(Severity.NOTICE))
    return report.exit_code


def cmd_inventory(args: argparse.Namespace) -> int:
    from ceremony.model.csr import normalise_eui64

    if args.inventory_command == "show":
        from ceremony.issue.lookup import show

        with opened(args) as ws:
            print("\n".join(show(ws, args.what)))
        return 0
    if args.inventory_command == "import":
        from ceremony.issue.importer import default_jobs, import_certificates

        with opened(args) as ws:
            done = import_certificates(ws, [Path(p) for p in args.paths], jobs=args.jobs or default_jobs())
        profiles = ", ".join(f"{name} {count}" for name, count in sorted((done.by_profile or {}).items()))
        print(f"imported {done.imported} certificates ({profiles or 'none'}); {done.already} already in the inventory"
              + (f"; {done.crls_skipped} CRLs left out" if done.crls_skipped else ""))  # fmt: skip
        return 0
    out = Path(args.out)
    if out.exists():
        raise InputError(f"{out} exists; choose a new file (exports never overwrite)")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} is not a directory")
    filters = {
        "issuer_ca": args.ca,
        "batch_id": args.batch,
        "eui64": normalise_eui64(args.eui64) if args.eui64 else None,
        "status": args.status,
        "profile": args.profile,
    }
    chosen = {column: value for column, value in filters.items() if value is not None}
    with opened(args) as ws:
        if args.format == "parquet":
            from ceremony.record.frames import export_parquet

            count = export_parquet(ws, out, chosen)
        else:
            export = ws.inventory.export_pem if args.format == "pem" else ws.inventory.export_csv
            count = export(out, chosen)
    print(f"{count} certificates -> {out}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from ceremony.model.ceremony_file import check_approver, load_ceremony, preflight, record_approval
    from ceremony.model.people import load_register
    from ceremony.model.policy import load_policy

    ceremony = load_ceremony(Path(args.file))
    register = load_register(register_path(args))
    policy = load_policy()
    check_approver(args.by, register)
    preflight(ceremony, register, policy)
    with opened(args) as ws:
        count = record_approval(ws.journal, ceremony, args.by, register)
    print(
        f"approved {ceremony.spec.ceremony_id} (sha256 {ceremony.sha256}) by {args.by}: "
        f"{count} of {policy.ceremony.approvals_required} approvals"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ceremony.reporting.notebooks import load_params_file, parse_cli_params, run_notebook

    params = load_params_file(Path(args.params_file)) if args.params_file else {}
    given = parse_cli_params(args.parameters or [])
    twice = sorted(set(params) & set(given))
    if twice:
        raise InputError(f"parameter {', '.join(twice)} given both in {args.params_file} and with -p")
    params |= given
    if args.workspace and "workspace" not in params:
        params["workspace"] = str(Path(args.workspace).resolve())
    if args.pdf:
        from ceremony.reporting.pdf import available_renderers

        if not available_renderers():
            raise InputError("--pdf: neither Chromium nor WeasyPrint is installed here (apt-get install chromium)")
    result = run_notebook(Path(args.notebook), params, reports_dir=Path(args.reports), rehearsal=args.rehearsal)
    pdf = None
    if args.pdf:
        from ceremony.reporting.pdf import render_pdf

        pdf = render_pdf(result.executed, result.executed.with_suffix(".pdf"))
    if args.json:
        print_json({"run_dir": str(result.run_dir), "executed": str(result.executed), "pdf": str(pdf) if pdf else None})
    else:
        print(f"executed {result.executed}" + (f"\npdf {pdf}" if pdf else ""))
    return 0


def cmd_transcript(args: argparse.Namespace) -> int:
    from ceremony.model.people import load_register
    from ceremony.procedures.attestation import attestation_status, require_registered, sign_transcript, signing_key
    from ceremony.record.transcript import diff_transcripts, verify_transcript

    if args.transcript_command == "sign":
        from ceremony.keys.personal import person_pin, token_ref

        register = load_register(register_path(args))
        registered = register.people.get(args.person)
        # A person enrolled on their own token signs with it unless a key file is named.
        label = args.token
        if label is None and not args.key and registered is not None:
            label = registered.attestation_token
        if label is not None:
            if args.key:
                raise InputError("--token and --key: sign with one key, your token's or a key file")
            token = token_ref(label, args.module, args.softhsm_conf)
            require_registered(args.person, register)  # before the PIN is asked for
            key = signing_key(args.person, register, token=token, pin=person_pin(args.person, token.token_label))
        else:
            if args.module or args.softhsm_conf:
                raise InputError("--module and --softhsm-conf go with --token")
            key_path = (
                Path(args.key) if args.key else workspace_dir(args) / "secrets" / "attestation" / f"{args.person}.key"
            )
            key = signing_key(args.person, register, key_file=key_path)
        entry = sign_transcript(Path(args.file), args.person, key, register)
        print(f"{args.person} attested {args.file} (seal {entry['seal_hash'][:16]}…) with {key.description}")
        return 0
    if args.transcript_command == "diff":
        for path in (Path(args.a), Path(args.b)):
            if not path.is_file():
                raise InputError(f"{path}: no such transcript")
        lines = diff_transcripts(Path(args.a), Path(args.b))
        print("\n".join(lines) if lines else "same steps, actors, parameters and outputs")
        return 1 if lines else 0
    report = verify_transcript(Path(args.file))
    print(report.message)
    if not report.ok:
        return 1
    status = attestation_status(Path(args.file), load_register(register_path(args)))
    print(status.render())
    return 0 if status.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ceremony", description="S1SPKI ceremony workbench")
    parser.add_argument("--workspace", help="workspace directory (default: $CEREMONY_WORKSPACE or ./workspace)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("init", help="a new workspace (token or software store, database, workspace.yaml)")
    p.add_argument("--key-store", choices=["auto", "pkcs11", "software"], default="auto")
    p.add_argument("--token-label", default="s1spki-workbench")
    p.add_argument(
        "--no-token",
        action="store_true",
        help="leave the token to a token-initialisation ceremony (its custodians then hold the PIN in shares)",
    )
    p.add_argument("--database", metavar="URL", help=DATABASE_HELP)
    p.add_argument(
        "--purpose",
        choices=["live", "demo", "rehearsal", "test"],
        default="live",
        help="live (default) runs the PKI: its token awaits an attended token-init ceremony and no PIN is written; "
        "demo, rehearsal and test are throwaway workspaces (PIN files, deposited shares, CEREMONY_PINNED_CLOCK)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="the whole story on a new workspace")
    p.add_argument(
        "--workspace",
        dest="workspace",
        default=argparse.SUPPRESS,
        help="a new or empty directory (default: ./workspaces/demo-<UTC>)",
    )
    p.add_argument("--devices", type=int, default=20, help="number of devices (DS + KA each; default 20)")
    p.add_argument("--database", metavar="URL", help=DATABASE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object describing what was done")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("issue", help="issue a certificate from a CSR and an approved identity")
    p.add_argument("--ca", required=True, help="issuing CA name")
    p.add_argument("--profile", required=True, help="certificate profile (e.g. ss1sp-device)")
    p.add_argument("--eui64", help="EUI-64 of the device or organisation (16 hex digits)")
    p.add_argument("--usage", choices=["ds", "ka"], help="digitalSignature (ds) or keyAgreement (ka)")
    p.add_argument("--role", help="RemotePartyRole code (hex), organisation certificates")
    p.add_argument("--name", help="organisation short name (CN), optional")
    p.add_argument("--devices", help="device list CSV: eui64,usage,csr (batch issuance; see README)")
    p.add_argument("--approved-by", required=True, help="person id of the RA officer who approved the request")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for a batch (default 1)")
    p.add_argument("--skip-rejected", metavar="FILE", help="issue the valid rows and write the rejects to FILE")
    p.add_argument("--rekey", action="store_true", help="allow a second valid certificate per EUI-64 and usage")
    p.add_argument(
        "--sample-rate", type=float, default=0.01, help="share of a batch given full post-issuance checks (0.01)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("csr", nargs="*", help="CSR file (PEM or DER)")
    p.set_defaults(func=cmd_issue)

    p = sub.add_parser("revoke", help="revoke a certificate by serial, or an EUI-64's certificates")
    p.add_argument("serial", nargs="?", help="serial number (hex)")
    p.add_argument("--eui64", help="revoke every valid certificate of this EUI-64 (with --usage: one of them)")
    p.add_argument("--usage", choices=["ds", "ka"])
    p.add_argument("--ca", required=True, help="the CA that issued the certificate")
    p.add_argument("--reason", required=True, help="RFC 5280 reason (policy: keyCompromise, superseded, ...)")
    p.add_argument("--requested-by", required=True, help="who asked for the revocation")
    p.add_argument("--approved-by", required=True, help="who approved it (a different person for CA certificates)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("crl", help="publish the next CRL (issuing CA) or ARL (root)")
    p.add_argument("--ca", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_crl)

    p = sub.add_parser("keys", help="symmetric keys: list, overdue, export and import under a transport KEK")
    ksub = p.add_subparsers(dest="keys_command", required=True, parser_class=Parser)
    k = ksub.add_parser("list", help="the key inventory")
    k.add_argument("--json", action="store_true")
    ksub.add_parser("overdue", help="active keys past their rotation date or crypto-period (exit 1 if any)")
    k = ksub.add_parser("export", help="a key wrapped (RFC 5649) under a transport KEK, with KCVs")
    k.add_argument("label")
    k.add_argument("--kek", required=True)
    k.add_argument("--out", required=True)
    k = ksub.add_parser("import", help="unwrap an exported key under the local transport KEK; KCVs must match")
    k.add_argument("file")
    k.add_argument("--kek", required=True)
    k.add_argument("--label", help="the label here (default: the file's)")
    k.add_argument("--serves", required=True, help="what the key is for")
    k.add_argument("--crypto-period-days", type=int, default=365)
    k.add_argument("--rotation-days", type=int, default=300)
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("lint", help="check certificates / CRLs against a profile")
    p.add_argument("--profile", help="profile name (default: classify each certificate)")
    p.add_argument("--json", action="store_true")
    p.add_argument("paths", nargs="+", help="files or directories")
    p.set_defaults(func=cmd_lint)

    from ceremony.cli import activation as cli_activation
    from ceremony.cli import compliance as cli_compliance
    from ceremony.cli import people as cli_people
    from ceremony.cli import registers as cli_registers
    from ceremony.cli import workspace as cli_workspace

    cli_compliance.add_parsers(sub)
    cli_workspace.add_parsers(sub)
    cli_activation.add_parsers(sub)
    cli_people.add_parsers(sub)
    cli_registers.add_parsers(sub)

    p = sub.add_parser("approve", help="record an approval of a ceremony file (by its SHA-256)")
    p.add_argument("file", help="ceremony file (YAML)")
    p.add_argument("--by", required=True, help="approver's person id (participant register)")
    p.add_argument(
        "--register", help="participant register (default: $CEREMONY_REGISTER, else <workspace>/people.yaml)"
    )
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("run", help="execute a ceremony notebook (papermill) into reports/runs/<UTC>-<notebook>/")
    p.add_argument("notebook")
    p.add_argument("-f", dest="params_file", help="parameters file (YAML mapping)")
    p.add_argument("-p", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter")
    p.add_argument("--rehearsal", action="store_true", help="rehearse: the rehearsal area and a throwaway token")
    p.add_argument("--reports", default="reports", help="reports directory (default: ./reports)")
    p.add_argument("--pdf", action="store_true", help="also render the executed notebook as an A4 PDF beside it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("transcript", help="ceremony transcripts")
    tsub = p.add_subparsers(dest="transcript_command", required=True, parser_class=Parser)
    t = tsub.add_parser("verify", help="exit 0 only for an intact, sealed transcript whose seal verifies")
    t.add_argument("file")
    t.add_argument("--register", help="participant register (for the attestations)")
    t = tsub.add_parser("sign", help="attest a sealed transcript with your registered key")
    t.add_argument("file")
    t.add_argument("--as", dest="person", required=True, help="your person id")
    t.add_argument(
        "--key", help="a key file, for trying the tool only (PEM; default <workspace>/secrets/attestation/<id>.key)"
    )
    t.add_argument(
        "--token",
        metavar="LABEL",
        help="sign with the key on your own token (default: the register's attestation_token; PIN: prompt or "
        "$CEREMONY_PERSON_PIN)",
    )
    t.add_argument("--module", metavar="PATH", help="your token's PKCS#11 module (default: SoftHSM2)")
    t.add_argument("--softhsm-conf", metavar="PATH", help="SoftHSM2 only: the configuration your token lives under")
    t.add_argument("--register", help="participant register")
    t = tsub.add_parser("diff", help="differences that matter between two transcripts (not times, digests, keys)")
    t.add_argument("a")
    t.add_argument("b")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("inventory", help="inventory export / import")
    inv = p.add_subparsers(dest="inventory_command", required=True, parser_class=Parser)
    e = inv.add_parser("export", help="a selection of certificates: CSV rows or the certificates as PEM")
    e.add_argument("--format", choices=["csv", "pem", "parquet"], required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--ca", help="issued by this CA")
    e.add_argument("--batch", help="of this batch id")
    e.add_argument("--eui64", help="of this EUI-64")
    e.add_argument("--status", choices=["valid", "revoked"])
    e.add_argument("--profile")
    i = inv.add_parser("show", help="everything known about a certificate (serial) or a device (EUI-64)")
    i.add_argument("what", help="a serial (hex) or an EUI-64 (16 hex digits)")
    i = inv.add_parser("import", help="foreign certificates: parsed in parallel, classified, findings kept")
    i.add_argument("paths", nargs="+")
    i.add_argument("--jobs", type=int, help="worker processes (default: up to 4)")
    p.set_defaults(func=cmd_inventory)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 findings, 2 rejected input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except CeremonyError as exc:
        print(f"ceremony: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ceremony: interrupted", file=sys.stderr)
        return 130
