"""`ceremony issue | revoke | crl | lint | inventory`: certificates, their revocation and the inventory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ceremony.cli.common import Parser, opened, print_json
from ceremony.errors import InputError


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
        done = publish_crl(ws, args.ca, by=args.by)
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
            done = import_certificates(ws, [Path(p) for p in args.paths], by=args.by, jobs=args.jobs or default_jobs())
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


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("issue", help="issue a certificate from a CSR and an approved identity")
    p.add_argument("--ca", required=True, help="issuing CA name")
    p.add_argument("--profile", required=True, help="certificate profile (e.g. ss1sp-device)")
    p.add_argument("--eui64", help="EUI-64 of the device or organisation (16 hex digits)")
    p.add_argument("--usage", choices=["ds", "ka"], help="digitalSignature (ds) or keyAgreement (ka)")
    p.add_argument("--role", help="RemotePartyRole code (hex), organisation certificates")
    p.add_argument("--name", help="organisation short name (CN), optional")
    p.add_argument("--devices", help="device list CSV: eui64,usage,csr (batch issuance; see README)")
    p.add_argument(
        "--approved-by", required=True, help="the RA officer who approved the request (register role ra-officer)"
    )
    p.add_argument("--jobs", type=int, default=1, help="worker processes for a batch (default 1)")
    p.add_argument("--skip-rejected", metavar="FILE", help="issue the valid rows and write the rejects to FILE")
    p.add_argument("--rekey", action="store_true", help="allow a second valid certificate per EUI-64 and usage")
    p.add_argument(
        "--sample-rate", type=float, default=0.01, help="share also linted with the issuer (0.01; all are linted)"
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
    p.add_argument("--requested-by", required=True, help="who asked for the revocation (a registered person)")
    p.add_argument("--approved-by", required=True, help="who approved it (register role approver; not the requester)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("crl", help="publish the next CRL (issuing CA) or ARL (root)")
    p.add_argument("--ca", required=True)
    p.add_argument("--by", required=True, help="the operator who publishes it (register role operator)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_crl)

    p = sub.add_parser("lint", help="check certificates / CRLs against a profile")
    p.add_argument("--profile", help="profile name (default: classify each certificate)")
    p.add_argument("--json", action="store_true")
    p.add_argument("paths", nargs="+", help="files or directories")
    p.set_defaults(func=cmd_lint)
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
    i.add_argument("--by", required=True, help="the operator who imports them (register role operator)")
    i.add_argument("--jobs", type=int, help="worker processes (default: up to 4)")
    p.set_defaults(func=cmd_inventory)
