"""`ceremony keys`: the symmetric key inventory, export and import under a transport KEK."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ceremony.cli.common import Parser, opened, print_json
from ceremony.errors import InputError


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


def add_parsers(sub: Any) -> None:
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
