"""`ceremony registers`: put register changes on record (who changed people.yaml or registers/*.yaml)."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_record(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened, print_json
    from ceremony.model.people import check_person
    from ceremony.record.registers import record_registers

    by = check_person(args.by, "--by")
    with opened(args) as ws:
        done = record_registers(ws, by=by, reason=args.reason)
    if args.json:
        print_json(
            {"recorded": [r.register for r in done if r.changed], "registers": {r.register: r.sha256 for r in done}}
        )
        return 0
    for r in done:
        print(f"{r.register}: {'recorded' if r.changed else 'unchanged since its last record'} ({r.sha256[:16]}…)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ceremony.cli.common import opened, print_json
    from ceremony.record.registers import last_records, register_digest, register_files

    with opened(args) as ws:
        records = last_records(ws.journal.entries())
        rows = []
        for relative in register_files(ws.root):
            last = records.get(relative)
            digest = register_digest(ws.root, relative)
            state = "never recorded" if last is None else "recorded" if last["sha256"] == digest else "changed"
            rows.append(
                {"register": relative, "state": state, "by": last and last.get("by"), "at": last and last["time"]}
            )
    if args.json:
        print_json({"registers": rows})
    else:
        for row in rows:
            who = f" by {row['by']} at {row['at']}" if row["by"] else ""
            print(f"{row['register']}: {row['state']}{who}")
    return 0 if all(r["state"] == "recorded" for r in rows) else 1


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("registers", help="put register changes on record; show what changed since")
    registers = p.add_subparsers(dest="registers_command", required=True, parser_class=type(p))
    r = registers.add_parser("record", help="journal each register changed since its last record, as changed by --by")
    r.add_argument("--by", required=True, metavar="PERSON", help="the administrator or compliance officer answerable")
    r.add_argument("--reason", required=True, metavar="TEXT", help="what changed and why")
    r.add_argument("--json", action="store_true", help="print one JSON object describing what was done")
    r.set_defaults(func=cmd_record)
    s = registers.add_parser("status", help="each register: recorded, changed since its record, or never recorded")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_status)
