"""A synthetic inventory for scale tests: certificate rows with realistic shapes, and no signature per row.

Every row is labelled synthetic (approved_by ``synthetic``, DER ``SYNTHETIC…``), so no one mistakes
it for an estate. Shapes: 95% device certificates in DS/KA pairs (notAfter 9999-12-31), 5%
organisation certificates (5 years), issued over three years in batches of 10,000, 1% revoked
with policy reasons.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ceremony.issue.single import create_ca
from ceremony.record.inventory import CERTIFICATE_COLUMNS
from ceremony.record.workspace import Purpose, init_workspace

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
REASONS = ["superseded"] * 6 + ["cessationOfOperation"] * 3 + ["keyCompromise"]


def make_inventory(root: Path, rows: int, *, seed: int = 7, purpose: Purpose = "test") -> Path:
    """A new software workspace with a root, an issuing CA and ``rows`` synthetic certificates."""
    ws = init_workspace(root, key_store="software", purpose=purpose)
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Synthetic Root", approved_by="synthetic")
    create_ca(ws, "issuing", profile_name="ss1spca-issuing", common_name="Synthetic Issuing",
              approved_by="synthetic", issuer_ca="root")  # fmt: skip
    rng = random.Random(seed)  # noqa: S311 - synthetic shapes, not secrets
    span = (datetime(2026, 11, 1, tzinfo=timezone.utc) - START).total_seconds()
    issuer = "CN=Synthetic Issuing,OU=07"
    made = 0
    while made < rows:
        chunk, revocations = [], []
        for _ in range(min(50_000, rows - made)):
            n = made + len(chunk)
            issued = START + timedelta(seconds=span * n / rows + rng.random() * 60)
            device = rng.random() < 0.95
            serial = f"{rng.getrandbits(127) | 1 << 120:032X}"
            usage = "ds" if n % 2 == 0 else "ka"
            not_after = "9999-12-31T23:59:59+00:00" if device else (issued + timedelta(days=1826)).isoformat()
            revoked = rng.random() < 0.01
            values = {
                "serial": serial, "issuer_ca": "issuing", "issuer": issuer, "subject": "" if device else "CN=Org",
                "eui64": f"{0x00DB_0000_0000_0000 + n // 2:016X}", "role": None if device else "02", "usage": usage,
                "name": None, "profile": "ss1sp-device" if device else "ss1sp-organisation",
                "not_before": issued.isoformat(), "not_after": not_after, "key_algorithm": "ec-p256",
                "signature_algorithm": "ecdsa-with-SHA256", "policy_oids": "1.3.6.1.4.1.32473.1.1",
                "ski": f"{rng.getrandbits(64):016X}", "aki": "0123456789ABCDEF",
                "fingerprint": hashlib.sha256(serial.encode()).hexdigest(), "status": "revoked" if revoked else "valid",
                "approved_by": "synthetic", "csr_sha256": None, "key_store": None,
                "batch_id": f"synthetic-{n // 10_000}",
                "ceremony_id": None, "issued_at": issued.isoformat(), "artifact": None,
                "der": b"SYNTHETIC" + n.to_bytes(4, "big"), "key_size": 256,
            }  # fmt: skip
            chunk.append(tuple(values[c] for c in CERTIFICATE_COLUMNS))
            if revoked:
                when = (issued + timedelta(days=rng.randrange(1, 300))).isoformat()
                revocations.append(("issuing", serial, rng.choice(REASONS), when, "synthetic", "synthetic2"))
        with ws.inventory.transaction() as db:
            ws.inventory.add_certificate_rows(db, chunk)
            db._executemany("INSERT INTO revocations VALUES (?, ?, ?, ?, ?, ?)", revocations)
        made += len(chunk)
    ws.close()
    return root
