"""`ceremony abandon`: the one way forward from a ceremony that failed or was interrupted."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_abandon(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened, print_json, register_path
    from ceremony.model.people import load_register
    from ceremony.procedures.abandonment import abandon, console_for

    register = load_register(register_path(args))
    with opened(args) as ws:
        done = abandon(
            ws,
            args.ceremony_id,
            witnesses=list(args.witness or []),
            reason=args.reason,
            console=console_for(ws),
            register=register,
        )
        if args.json:
            print_json(done.to_json())
        else:
            print(done.render())
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "abandon",
        help="abandon an unsealed ceremony that failed or was interrupted: destroy on the token what it created "
        "(two witnesses confirming), seal its transcript as abandoned, free its token for a new ceremony file",
    )
    p.add_argument("ceremony_id", metavar="CEREMONY_ID", help="the ceremony's id (its transcript's name)")
    p.add_argument(
        "--witness",
        action="append",
        metavar="PERSON",
        help="a registered person confirming the abandonment (give two; at the terminal, each types their id)",
    )
    p.add_argument("--reason", help="why it is abandoned (default: how it failed, from its transcript)")
    p.add_argument(
        "--register", help="participant register (default: $CEREMONY_REGISTER, else <workspace>/people.yaml)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_abandon)
