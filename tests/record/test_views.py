"""The out-of-core views over the columnar snapshot answer exactly what the pandas views answer over the whole typed
frame: on a small workspace with the edge cases (a missing usage, revoked and expired certificates, several CAs, a
foreign issuer, dictionary deltas between record batches), and row by row on synthetic rows."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ceremony.errors import StateError
from ceremony.issue.batch import issue_batch
from ceremony.issue.revocation import revoke
from ceremony.issue.single import create_ca
from ceremony.record import frames as fr
from ceremony.record import views as vw
from ceremony.record.inventory import CERTIFICATE_COLUMNS, CERTIFICATE_FRAME_COLUMNS
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list

AS_OF = datetime(2027, 1, 1, tzinfo=timezone.utc)
#: Every view, and how it is called with the as-of date (the views that take one).
VIEWS: dict[str, Callable[[Any], Any]] = {
    "expiry_buckets": lambda view: lambda source: view(source, AS_OF),
    "issuance_per_month": lambda view: view,
    "by_profile_usage_role": lambda view: view,
    "revocations_by_reason": lambda view: view,
    "ca_lineage": lambda view: view,
    "keys_by_state": lambda view: lambda source: view(source, AS_OF),
    "devices_missing_usage": lambda view: view,
    "orphans": lambda view: view,
}


@pytest.fixture
def key_store_kind() -> str:
    return "software"


def _row(n: int, *, issuer_ca: str, profile: str, eui64: str | None, usage: str | None, not_after: datetime,
         status: str = "valid") -> tuple[Any, ...]:  # fmt: skip
    """A certificate row as the inventory stores it (no certificate behind it: DER marked as such)."""
    serial = f"{0x7E << 120 | n:032X}"
    issued = AS_OF - timedelta(days=400 - n)
    values = {
        "serial": serial, "issuer_ca": issuer_ca, "issuer": f"CN={issuer_ca}", "subject": "", "eui64": eui64,
        "role": None if usage else "02", "usage": usage, "name": None, "profile": profile,
        "not_before": issued.isoformat(), "not_after": not_after.isoformat(), "key_algorithm": "ec-p256",
        "signature_algorithm": "ecdsa-with-SHA256", "policy_oids": "1.3.6.1.4.1.32473.1.1", "ski": f"{n:016X}",
        "aki": "0123456789ABCDEF", "fingerprint": hashlib.sha256(serial.encode()).hexdigest(), "status": status,
        "approved_by": "test-rows", "csr_sha256": None, "key_store": None, "batch_id": f"rows-{n % 3}",
        "ceremony_id": None, "issued_at": issued.isoformat(), "artifact": None, "der": b"TEST-ROW" + bytes([n]),
        "key_size": 256,
    }  # fmt: skip
    return tuple(values[c] for c in CERTIFICATE_COLUMNS)


def _add(ws: Workspace, rows: list[tuple[Any, ...]], revoked: list[tuple[str, str, str]]) -> None:
    """Insert ``rows`` and the revocations (issuing CA, serial, reason) of those revoked among them."""
    when = (AS_OF - timedelta(days=3)).isoformat()
    with ws.inventory.transaction() as db:
        ws.inventory.add_certificate_rows(db, rows)
        db._executemany("INSERT INTO revocations VALUES (?, ?, ?, ?, ?, ?)",
                        [(ca, serial, reason, when, "bob", "alice") for ca, serial, reason in revoked])  # fmt: skip


@pytest.fixture
def estate(ca_workspace: Workspace, tmp_path: Path) -> Workspace:
    """Three CAs; three devices (DS and KA), the first one's DS revoked; and rows of the edge cases: a device
    certificate without a usage, organisation certificates expired and expiring in each bucket, a revoked one
    of the second issuing CA, and a certificate of a CA the inventory does not know."""
    ws = ca_workspace
    create_ca(ws, "issuing-2", profile_name="ss1spca-issuing", common_name="Test Issuing 2", approved_by="alice",
              issuer_ca="root")  # fmt: skip
    issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", devices=device_list(tmp_path / "list", 3),
                approved_by="bob", progress=False)  # fmt: skip
    revoke(ws, ca_name="issuing", eui64="00DB123400000001", usage="ds", reason="keyCompromise", requested_by="bob",
           approved_by="alice")  # fmt: skip
    never = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    rows = [
        _row(1, issuer_ca="issuing-2", profile="ss1sp-device", eui64="00DB9999000000AA", usage=None, not_after=never),
        _row(2, issuer_ca="issuing-2", profile="ss1sp-device", eui64="00DB9999000000BB", usage="ka", not_after=never),
        _row(3, issuer_ca="issuing-2", profile="ss1sp-device", eui64="00DB9999000000BB", usage="ds", not_after=never,
             status="revoked"),
        _row(4, issuer_ca="issuing-2", profile="ss1sp-device", eui64=None, usage="ds", not_after=never),
    ]  # fmt: skip
    for n, days in enumerate((-400, -1, 0, 29, 30, 89, 90, 364, 365, 1824, 1825, 4000), start=10):
        rows.append(_row(n, issuer_ca="issuing", profile="ss1sp-organisation", eui64=None, usage=None,
                         not_after=AS_OF + timedelta(days=days, hours=1)))  # fmt: skip
    rows.append(_row(30, issuer_ca="ext:Foreign CA", profile="smki-organisation", eui64=None, usage=None,
                     not_after=AS_OF - timedelta(days=10), status="revoked"))  # fmt: skip
    serial = {r[0]: r for r in rows}
    revoked = [(r[1], r[0], "superseded") for r in rows if r[CERTIFICATE_COLUMNS.index("status")] == "revoked"]
    assert len(serial) == len(rows) and len(revoked) == 2
    _add(ws, rows, revoked)
    return ws


def _deltas(ws: Workspace) -> None:
    """Rebuild the snapshot four rows per record batch: later batches bring new categories (dictionary deltas)."""
    (ws.root / fr.SNAPSHOT).unlink(missing_ok=True)
    fr.fresh_snapshot(ws, chunk=4)


def _assert_views_equal(snapshot: vw.Snapshot, frames: fr.Frames) -> None:
    for name, call in VIEWS.items():
        out_of_core, in_memory = call(getattr(vw, name))(snapshot), call(getattr(fr, name))(frames)
        pd.testing.assert_frame_equal(out_of_core, in_memory, obj=name)


def test_the_out_of_core_views_equal_the_pandas_views(estate: Workspace) -> None:
    _deltas(estate)
    snapshot, frames = vw.snapshot(estate), fr.frames(estate)
    assert snapshot.rows == len(frames.certificates) == 3 + 6 + 17
    _assert_views_equal(snapshot, frames)
    # The edge cases are in the answers, not only in the data.
    buckets = vw.expiry_buckets(snapshot, AS_OF).set_index(["bucket", "profile"])["certificates"]
    assert buckets[("expired", "ss1sp-organisation")] == 2 and len(buckets.index.get_level_values(0).unique()) == 7
    missing = vw.devices_missing_usage(snapshot).to_dict("records")
    assert missing == [{"eui64": "00DB123400000001", "has": "ka"}, {"eui64": "00DB9999000000BB", "has": "ka"}]
    groups = vw.by_profile_usage_role(snapshot)
    assert groups["usage"].isna().any() and groups["role"].isna().any()
    reasons = vw.revocations_by_reason(snapshot).astype({"issuer_ca": str, "revocation_reason": str})
    assert reasons.values.tolist() == [
        ["issuing", "keyCompromise", 1], ["issuing-2", "superseded", 1], ["ext:Foreign CA", "superseded", 1],
    ]  # fmt: skip
    lineage = vw.ca_lineage(snapshot).set_index("name")
    assert lineage.loc["issuing-2", ["valid", "revoked"]].tolist() == [3, 1]
    assert vw.orphans(snapshot).to_dict("records") == [
        {"kind": "certificate without its CA", "name": f"{0x7E << 120 | 30:032X}"}
    ]


def test_an_eui64_not_as_the_workbench_writes_it_is_compared_as_text(estate: Workspace) -> None:
    """A lower-case EUI-64 (an import could bring one) is another device than its upper-case spelling, as in the
    typed frame: the view falls back from integers to text, in whichever record batch it first meets one."""
    never = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    _add(estate, [_row(40, issuer_ca="issuing", profile="ss1sp-device", eui64="00db123400000002", usage="ds",
                       not_after=never)], [])  # fmt: skip
    _deltas(estate)
    snapshot, frames = vw.snapshot(estate), fr.frames(estate)
    _assert_views_equal(snapshot, frames)
    assert {"eui64": "00db123400000002", "has": "ds"} in vw.devices_missing_usage(snapshot).to_dict("records")


def test_the_views_agree_on_an_empty_inventory(ca_workspace: Workspace) -> None:
    snapshot, frames = vw.snapshot(ca_workspace), fr.frames(ca_workspace)
    assert snapshot.rows == 2
    _assert_views_equal(snapshot, frames)


def test_a_selection_loads_only_its_rows_and_columns(estate: Workspace) -> None:
    _deltas(estate)
    snapshot, whole = vw.snapshot(estate), fr.frames(estate).certificates
    revoked = vw.certificates(snapshot, ["serial", "issuer_ca", "revocation_reason"], {"status": "revoked"})
    expected = whole.loc[whole["status"] == "revoked", ["serial", "issuer_ca", "revocation_reason"]]
    pd.testing.assert_frame_equal(revoked, expected.reset_index(drop=True))
    some = vw.certificates(snapshot, where={"issuer_ca": ["issuing-2", "root"], "usage": "ds"})
    assert list(some.columns) == list(CERTIFICATE_FRAME_COLUMNS)
    assert some["serial"].tolist() == [f"{0x7E << 120 | n:032X}" for n in (3, 4)]  # issuing-2's DS rows
    assert len(vw.certificates(snapshot, ["serial"], limit=5)) == 5
    assert vw.certificates(snapshot, ["serial"], {"eui64": "none such"}).empty
    streamed = pd.concat(list(vw.certificate_frames(snapshot)), ignore_index=True)
    pd.testing.assert_frame_equal(streamed, whole, check_categorical=False)  # categories grow batch by batch
    with pytest.raises(ValueError, match="not certificate columns: der"):
        vw.certificates(snapshot, ["der"])


def test_a_snapshot_rebuilt_since_it_was_opened_is_refused(estate: Workspace) -> None:
    snapshot = vw.snapshot(estate)
    revoke(estate, ca_name="issuing", eui64="00DB123400000002", usage="ka", reason="superseded",
           requested_by="bob", approved_by="alice")  # fmt: skip
    assert len(vw.revocations_by_reason(snapshot)) == 3  # the file is still the one opened
    fr.fresh_snapshot(estate)  # rebuilt: another generation
    with pytest.raises(StateError, match="changed since the inventory was opened: open it again"):
        vw.orphans(snapshot)
    assert vw.revocations_by_reason(vw.snapshot(estate))["revoked"].sum() == 4


def test_the_views_agree_with_a_row_by_row_reading(tmp_path: Path) -> None:
    """3,000 synthetic rows (1% revoked, in DS/KA pairs, 5% organisation certificates): the counting views out of
    core, against the same questions answered one row at a time."""
    from bench.synthetic import make_inventory

    root = make_inventory(tmp_path / "ws", 3000, purpose="test")
    ws = Workspace.open(root)
    _deltas(ws)
    snapshot, frames = vw.snapshot(ws), fr.frames(ws)
    ws.close()
    _assert_views_equal(snapshot, frames)
    rows = frames.certificates.to_dict("records")

    def text(value: Any) -> Any:
        return None if pd.isna(value) else str(value)

    groups = Counter(tuple(text(r[c]) for c in fr.PROFILE_USAGE_ROLE) for r in rows)
    got = vw.by_profile_usage_role(snapshot)
    assert {tuple(text(v) for v in k): n for *k, n in got.itertuples(index=False)} == dict(groups)
    reasons = Counter((r["issuer_ca"], r["revocation_reason"]) for r in rows if text(r["revocation_reason"]))
    got = vw.revocations_by_reason(snapshot)
    assert {(str(a), str(b)): n for a, b, n in got.itertuples(index=False)} == dict(reasons) and reasons
    lineage = vw.ca_lineage(snapshot).set_index("name")
    issued = Counter((r["issuer_ca"], r["status"]) for r in rows)
    assert lineage.loc["issuing", ["valid", "revoked"]].tolist() == [issued["issuing", "valid"],
                                                                     issued["issuing", "revoked"]]  # fmt: skip
    assert lineage.loc["root", "valid"] == issued["root", "valid"] == 2
