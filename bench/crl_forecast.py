"""CRL forecast: the size of a fleet's CRL and the time to build and sign it, scaled from a signed sample.

    python -m bench.crl_forecast [--sample 20000] [--entries 10000,100000,1000000] [--json]

A sample of revocations (random positive 16-octet serials, one reason each) is encoded and signed with the
package's CRL encoder and a fresh P-256 key; the size and the time grow linearly with the entries (about 50
octets an entry with its reason code), so each is scaled from the sample to every fleet size asked for. The
table is printed and no file is written: ``bench.issuance`` measures CRLs of 100,000 and 1,000,000 entries
directly, against ``openssl ca -gencrl``, for docs/benchmarks.md; this is the quick estimate notebook 40 used
to show.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from typing import Any

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


def measure(sample: int) -> dict[str, Any]:
    """Encode and sign a CRL of ``sample`` revocations: its size and the time taken, in all and per entry."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from ceremony.clock import current
    from ceremony.issue.crl import encode_entries, encode_tbs, sign_crl

    now = current().now().replace(microsecond=0)
    entries = [
        ((int.from_bytes(secrets.token_bytes(16), "big") >> 1) | 1 << 120, now, "superseded") for _ in range(sample)
    ]
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Bench Issuing")])
    started = time.perf_counter()
    der = sign_crl(encode_tbs(issuer, b"\x01" * 8, 1, now, now, encode_entries(entries)), key)
    seconds = time.perf_counter() - started
    crl = x509.load_der_x509_crl(der)  # the sample must be a CRL a relying party can read, with every entry
    assert len(crl) == sample and crl.is_signature_valid(key.public_key())
    return {
        "sample": sample,
        "bytes": len(der),
        "seconds": seconds,
        "bytes_per_entry": len(der) / sample,
        "seconds_per_entry": seconds / sample,
    }


def forecast(measured: dict[str, Any], sizes: list[int]) -> list[dict[str, Any]]:
    """The sample's per-entry size and time, scaled to each fleet size."""
    return [
        {"entries": n, "megabytes": n * measured["bytes_per_entry"] / 1e6, "seconds": n * measured["seconds_per_entry"]}
        for n in sizes
    ]


def run(sample: int, sizes: list[int]) -> dict[str, Any]:
    if sample < 1:
        raise SystemExit("--sample must be at least 1")
    measured = measure(sample)
    return {"measured": measured, "forecast": forecast(measured, sizes)}


def table(report: dict[str, Any]) -> str:
    m = report["measured"]
    lines = [
        f"sample: {m['sample']:,} entries, {m['bytes']:,} octets ({m['bytes_per_entry']:.1f} an entry), "
        f"built and signed in {m['seconds']:.3f} s",
        f"{'entries':>12} {'CRL size':>12} {'build + sign':>14}",
    ]
    lines += [f"{r['entries']:>12,} {r['megabytes']:>9.1f} MB {r['seconds']:>12.2f} s" for r in report["forecast"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crl_forecast", description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=20_000, help="revocations encoded and signed for real")
    parser.add_argument(
        "--entries", default=",".join(str(n) for n in DEFAULT_SIZES), help="fleet CRL sizes, comma-separated"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = run(args.sample, [int(n) for n in args.entries.split(",") if n.strip()])
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
