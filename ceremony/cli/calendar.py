"""`ceremony calendar`: everything that falls due in the workspace, up to a date; exit 1 when anything is overdue."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_calendar(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened, print_json
    from ceremony.compliance.calendar import KINDS, parse_until, workspace_calendar
    from ceremony.compliance.sources import Evidence

    with opened(args) as ws:  # the output inside: the workspace's mark follows it
        ev = Evidence(ws)
        until = parse_until(args.until, ev.as_of)  # before anything is read: a bad --until changes nothing
        cal = workspace_calendar(ev, until)
        if args.json:
            print_json(cal.to_json(str(ws.root)))
        else:
            print(
                f"calendar of {ws.root} as of {cal.as_of:%Y-%m-%d %H:%M} UTC until {cal.until}: "
                f"{len(cal.items)} items, {len(cal.overdue)} overdue"
            )
            for i in cal.items:
                status = "OVERDUE" if i.status == "overdue" else i.status
                print(f"{i.date}  {status:<8}  {KINDS[i.kind]:<24}  {i.subject:<28}  {i.source}")
            for gap in cal.gaps:
                print(f"calendar: not on the calendar: {gap}", file=sys.stderr)
    return 1 if cal.overdue or cal.gaps else 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "calendar",
        help="what falls due (CA expiries and renewals, key rotations, CRLs, vetting, training, reviews, assessments); "
        "exit 1 if anything is overdue",
    )
    p.add_argument("--until", metavar="DATE", help="the last day shown, YYYY-MM-DD (default: a year from today)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_calendar)
