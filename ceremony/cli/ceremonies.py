"""`ceremony approve | run | transcript`: approving a ceremony file, running a notebook, transcripts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ceremony.cli.common import Parser, opened, print_json, register_path, workspace_dir
from ceremony.errors import InputError


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


def add_parsers(sub: Any) -> None:
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
