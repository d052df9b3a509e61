"""The `ceremony` command line: parses arguments and calls the package; catches only CeremonyError."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ceremony.cli.common import DATABASE_HELP, Parser, print_json, workspace_dir
from ceremony.clock import current
from ceremony.errors import CeremonyError

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
    from ceremony.cli.demo import demo_workspace_dir, next_steps, run_demo

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
        print("\n".join(next_steps(result)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ceremony", description="S1SPKI ceremony workbench")
    parser.add_argument("--workspace", help="workspace directory (default: $CEREMONY_WORKSPACE or ./workspace)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("init", help="a new workspace (token or software store, database, workspace.yaml)")
    p.add_argument("--key-store", choices=["auto", "pkcs11", "software"], default="auto")
    p.add_argument("--token-label", default="s1sp-ca-token", help="as data/ceremonies/*.yaml name it (default)")
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

    from ceremony.cli import abandonment as cli_abandonment
    from ceremony.cli import activation as cli_activation
    from ceremony.cli import calendar as cli_calendar
    from ceremony.cli import ceremonies as cli_ceremonies
    from ceremony.cli import certificates as cli_certificates
    from ceremony.cli import compliance as cli_compliance
    from ceremony.cli import keys as cli_keys
    from ceremony.cli import people as cli_people
    from ceremony.cli import registers as cli_registers
    from ceremony.cli import workspace as cli_workspace

    cli_certificates.add_parsers(sub)
    cli_keys.add_parsers(sub)
    cli_compliance.add_parsers(sub)
    cli_workspace.add_parsers(sub)
    cli_activation.add_parsers(sub)
    cli_abandonment.add_parsers(sub)
    cli_people.add_parsers(sub)
    cli_registers.add_parsers(sub)
    cli_ceremonies.add_parsers(sub)
    cli_calendar.add_parsers(sub)
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
