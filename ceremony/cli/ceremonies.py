"""`ceremony approve | run | open | transcript`: approving ceremony files, running or opening notebooks, transcripts
(verified, attested, compared, timestamped)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ceremony.cli.common import REPORTS_HELP, Parser, opened, print_json, register_path, reports_dir, workspace_dir
from ceremony.errors import InputError


def cmd_approve(args: argparse.Namespace) -> int:
    from ceremony.model.ceremony_file import (
        check_approver,
        check_workspace_token,
        load_ceremony,
        preflight,
        record_approval,
    )
    from ceremony.model.people import load_register
    from ceremony.model.policy import load_policy

    ceremony = load_ceremony(Path(args.file))
    register = load_register(register_path(args))
    policy = load_policy()
    check_approver(args.by, register)
    preflight(ceremony, register, policy)
    with opened(args) as ws:
        check_workspace_token(ceremony, ws.token_label)
        count = record_approval(ws.journal, ceremony, args.by, register)
    print(
        f"approved {ceremony.spec.ceremony_id} (sha256 {ceremony.sha256}) by {args.by}: "
        f"{count} of {policy.ceremony.approvals_required} approvals"
    )
    return 0


def _run_request(args: argparse.Namespace) -> tuple[dict[str, Any], Path, Path]:
    """A run's parameters (``-f`` then ``-p``), the workspace it belongs to and its reports directory, resolved
    once for ``run`` and ``open``: the workspace is ``-p workspace``, else ``--workspace``,
    ``$CEREMONY_WORKSPACE`` or ``./workspace`` (:func:`workspace_dir`), and the run records it whichever it was."""
    from ceremony.reporting.notebooks import check_secret_parameters, load_params_file, parse_cli_params

    params = load_params_file(Path(args.params_file)) if args.params_file else {}
    given = parse_cli_params(args.parameters or [])
    twice = sorted(set(params) & set(given))
    if twice:
        raise InputError(f"parameter {', '.join(twice)} given both in {args.params_file} and with -p")
    params |= given
    check_secret_parameters(params)  # before a value is looked at, let alone written
    workspace = workspace_dir(args)
    named = params.get("workspace")
    if named is not None:
        if args.workspace and Path(str(named)).resolve() != Path(args.workspace).resolve():
            raise InputError(
                f"parameter workspace ({named}) and --workspace ({args.workspace}) name different workspaces; give one"
            )
        workspace = Path(str(named))
    workspace = workspace.resolve()
    if named is not None:
        params["workspace"] = str(workspace)  # recorded as the folder it is, wherever the record is read
    reports = reports_dir(args, workspace)
    if not args.reports and not (workspace / "workspace.yaml").is_file():
        raise InputError(
            f"{workspace} is not a workspace (no workspace.yaml); run `ceremony init`, or name one with --workspace"
        )
    return params, workspace, reports


def cmd_run(args: argparse.Namespace) -> int:
    from ceremony.reporting.notebooks import run_notebook

    params, workspace, reports = _run_request(args)
    if args.pdf:
        from ceremony.reporting.pdf import available_renderers

        if not available_renderers():
            raise InputError("--pdf: neither Chromium nor WeasyPrint is installed here (apt-get install chromium)")
    result = run_notebook(
        Path(args.notebook), _absolute_paths(params), reports_dir=reports, rehearsal=args.rehearsal, workspace=workspace
    )
    pdf = None
    if args.pdf:
        from ceremony.reporting.pdf import render_pdf

        pdf = render_pdf(result.executed, result.executed.with_suffix(".pdf"))
    if args.json:
        print_json({"run_dir": str(result.run_dir), "executed": str(result.executed), "pdf": str(pdf) if pdf else None})
    else:
        print(f"executed {result.executed}" + (f"\npdf {pdf}" if pdf else ""))
    return 0


def _absolute_paths(params: dict[str, Any]) -> dict[str, Any]:
    """Values naming an existing file or directory relative to here (``data/ceremonies/root-ca.yaml``), made
    absolute: the record then names the file wherever it is read, and an attended kernel, which runs in the run
    directory, finds it. Anything else (a person's id, a file yet to be written) is left as given."""
    out = dict(params)
    for name, value in params.items():
        if isinstance(value, str) and ("/" in value or "." in value) and not Path(value).is_absolute():
            if Path(value).exists():
                out[name] = str(Path(value).resolve())
    return out


def _lab_command() -> list[str]:
    """JupyterLab of this environment (the venv ``ceremony`` runs from)."""
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        raise InputError("JupyterLab is not installed here", hint="pip install -e '.[lab]' (or: make lab)")
    return [sys.executable, "-m", "jupyterlab"]


def _start_lab(
    command: list[str], run_dir: Path, notebook: Path, workspace: Path, *, port: int | None, browser: bool
) -> int:
    """JupyterLab on the run directory alone, on 127.0.0.1, its kernels over Unix sockets (never TCP: what the
    officers type, share words included, would cross it in plain text), until it is stopped."""
    command = [
        *command,
        str(notebook),
        f"--ServerApp.root_dir={run_dir}",
        "--ServerApp.ip=127.0.0.1",
        "--KernelManager.transport=ipc",
    ]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not browser:
        command.append("--no-browser")
    if os.geteuid() == 0:  # a container's only user; JupyterLab refuses root unless told
        command.append("--allow-root")
    sys.stdout.flush()
    lab = subprocess.Popen(command, env=os.environ | {"CEREMONY_WORKSPACE": str(workspace)})  # noqa: S603
    # Ctrl-C at the terminal reaches JupyterLab itself (it asks before stopping): here it is only waited out (a Python
    # handler, unlike SIG_IGN, is not inherited). A stop asked of this process is passed on, never left orphaned.
    handlers = {
        signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: None),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda number, _: lab.send_signal(number)),
    }
    try:
        code = lab.wait()
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM, 130):
        from ceremony.reporting.notebooks import NotebookError

        raise NotebookError(
            f"JupyterLab exited with status {code} (its log is above); the run copy stays at {notebook}"
        )
    print(f"JupyterLab stopped; the run copy {notebook} goes into the next evidence pack")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    """The run copy of a notebook for an attended ceremony, then JupyterLab on it (notebooks/ stays untouched)."""
    from ceremony.reporting.notebooks import prepare_copy

    params, workspace, reports = _run_request(args)
    command = None if args.prepare_only else _lab_command()  # JupyterLab missing: refused before the copy is made
    prepared = prepare_copy(
        Path(args.notebook), _absolute_paths(params), reports_dir=reports, rehearsal=args.rehearsal,
        workspace=workspace,
    )  # fmt: skip
    run_dir, notebook = prepared.run_dir.resolve(), prepared.copy.resolve()
    if args.json:
        print_json({"run_dir": str(run_dir), "notebook": str(notebook)})
    else:
        print(f"run copy {notebook}")
    if command is None:
        return 0
    return _start_lab(command, run_dir, notebook, workspace, port=args.port, browser=not args.no_browser)


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
    if args.transcript_command == "timestamp":
        return _timestamp_pending(args)
    from ceremony.record.timestamps import seal_timestamp

    report = verify_transcript(Path(args.file))
    print(report.message)
    if not report.ok:
        return 1
    stamp = seal_timestamp(Path(args.file), Path(args.tsa_chain) if args.tsa_chain else None)
    if stamp is not None:
        print(stamp.message)
    status = attestation_status(Path(args.file), load_register(register_path(args)))
    print(status.render())
    return 0 if status.ok and (stamp is None or stamp.ok) else 1


def _timestamp_pending(args: argparse.Namespace) -> int:
    """`ceremony transcript timestamp`: stamp every sealed transcript and checkpoint still without a token."""
    from ceremony.record.timestamps import stamp_pending, workspace_authority
    from ceremony.record.workspace import WORKSPACE_FILE

    with opened(args) as ws:
        if workspace_authority(ws) is None:  # a chain that cannot be read is refused here (exit 2)
            raise InputError(
                f"{ws.root / WORKSPACE_FILE} names no time-stamping authority (timestamping: url, certificate)"
            )
        report = stamp_pending(ws)
    if args.json:
        print_json(report.to_json())
    else:
        print("\n".join(report.lines()) or "nothing to timestamp: every sealed transcript and checkpoint has its token")
    return 1 if report.pending or report.problems else 0


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
    p.add_argument("--reports", help=REPORTS_HELP)
    p.add_argument("--pdf", action="store_true", help="also render the executed notebook as an A4 PDF beside it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "open",
        help="an attended run: the notebook's run copy in <workspace>/reports/runs/<UTC>-<notebook>/, parameters "
        "injected, opened in JupyterLab (notebooks/ is left untouched)",
    )
    p.add_argument("notebook")
    p.add_argument("-f", dest="params_file", help="parameters file (YAML mapping)")
    p.add_argument("-p", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter")
    p.add_argument("--rehearsal", action="store_true", help="rehearse: the rehearsal area and a throwaway token")
    p.add_argument("--reports", help=REPORTS_HELP)
    p.add_argument("--prepare-only", action="store_true", help="only create the run copy; start no JupyterLab")
    p.add_argument("--port", type=int, help="JupyterLab's port on 127.0.0.1 (default: the first free from 8888)")
    p.add_argument("--no-browser", action="store_true", help="print JupyterLab's address; open no browser")
    p.add_argument("--json", action="store_true", help='print {"run_dir": ..., "notebook": ...} (absolute paths)')
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("transcript", help="ceremony transcripts")
    tsub = p.add_subparsers(dest="transcript_command", required=True, parser_class=Parser)
    t = tsub.add_parser("verify", help="exit 0 only for an intact, sealed transcript whose seal verifies")
    t.add_argument("file")
    t.add_argument("--register", help="participant register (for the attestations)")
    t.add_argument(
        "--tsa-chain",
        metavar="PEM",
        help="the TSA chain its seal's timestamp token is checked under (default: the one the evidence pack it lies "
        "in carries, else the one its workspace names)",
    )
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
    t = tsub.add_parser(
        "timestamp",
        help="get the workspace TSA's timestamp tokens for every sealed transcript and journal checkpoint still "
        "without one (seals made offline); exit 1 while any is still pending",
    )
    t.add_argument("--json", action="store_true", help="print one JSON object: stamped, pending, deferred, problems")
    p.set_defaults(func=cmd_transcript)
