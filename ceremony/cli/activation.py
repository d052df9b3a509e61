"""`ceremony activate`: custodians open the token for daily work, for a bounded session; `--status`, `--end`."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_activate(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened, print_json
    from ceremony.procedures import activation
    from ceremony.procedures.consoles import Attended

    with opened(args) as ws:
        if args.end:
            ended = activation.end(ws)
            print(f"token {ws.token_label!r}: " + ("activation session ended" if ended else "no activation session"))
            return 0
        if args.status:
            running = activation.status(ws)
            if args.json:
                print_json({"active": running is not None, **(running.__dict__ if running else {})})
            elif running is None:
                print(f"token {ws.token_label!r} is not activated")
            else:
                print(
                    f"token {running.token_label!r} activated (session {running.session}) until {running.expires}: "
                    f"{running.seconds_left} s and {running.operations_left} signatures left"
                )
            return 0 if running is not None else 1
        started = activation.activate(ws, Attended(), minutes=args.minutes, operations=args.operations)
        if args.json:
            print_json(started.__dict__)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "activate",
        help="custodians present m PIN shares; the token opens for daily work for a bounded session "
        "(never a PIN on disk)",
    )
    p.add_argument("--minutes", type=int, help="how long the session lasts (default and limit: the policy's)")
    p.add_argument("--operations", type=int, help="how many signatures it may make (default and limit: the policy's)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="the running session, if any (exit 1 when none)")
    what.add_argument("--end", action="store_true", help="end the running session now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_activate)
