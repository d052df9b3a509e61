"""Inventory frames and look-ups on a real workspace, on SQLite and on a real PostgreSQL server: typed
columns, the views, and `inventory show`."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from ceremony.cli.main import main
from ceremony.issue.batch import issue_batch
from ceremony.issue.revocation import revoke
from ceremony.record import frames as fr
from ceremony.record.inventory import CERTIFICATE_FRAME_COLUMNS
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list
from tests.support.postgres import ENGINES, database_for


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest) -> str | None:
    return database_for(request)


@pytest.fixture
def estate(ca_workspace: Workspace, tmp_path: Path) -> Workspace:
    """Root, issuing CA, 3 devices (DS and KA each), the first device's DS revoked."""
    devices = device_list(tmp_path / "list", 3)
    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
                progress=False)  # fmt: skip
    revoke(ca_workspace, ca_name="issuing", eui64="00DB123400000001", usage="ds", reason="keyCompromise",
           requested_by="bob", approved_by="alice")  # fmt: skip
    return ca_workspace


def test_frames_are_typed(estate: Workspace) -> None:
    f = fr.frames(estate)
    c = f.certificates
    assert len(c) == 2 + 6 and "der" not in c.columns
    assert str(c["not_after"].dtype) == "datetime64[us, UTC]"
    assert c["not_after"].max() == pd.Timestamp("9999-12-31 23:59:59", tz="UTC")  # the GBCS sentinel fits
    for column in ("profile", "status", "usage", "issuer_ca", "revocation_reason"):
        assert isinstance(c[column].dtype, pd.CategoricalDtype), column
    assert str(c["serial"].dtype).startswith("str") or "string" in str(c["serial"].dtype)
    assert c.loc[c["status"] == "revoked", "revocation_reason"].tolist() == ["keyCompromise"]


def test_views_answer_the_first_questions(estate: Workspace) -> None:
    f = fr.frames(estate)
    buckets = fr.expiry_buckets(f, datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert buckets.set_index(["bucket", "profile"])["certificates"].to_dict() == {
        ("> 5 years", "ss1spca-issuing"): 1, ("> 5 years", "ss1spca-root"): 1, (fr.NEVER, "ss1sp-device"): 5,
    }  # fmt: skip
    assert fr.issuance_per_month(f)["certificates"].sum() == 8
    assert fr.revocations_by_reason(f).to_dict("records") == [
        {"issuer_ca": "issuing", "revocation_reason": "keyCompromise", "revoked": 1}
    ]
    lineage = fr.ca_lineage(f).set_index("name")
    assert (lineage.loc["issuing", "valid"], lineage.loc["issuing", "revoked"]) == (5, 1)
    assert lineage.loc["root", "valid"] == 2
    missing = fr.devices_missing_usage(f)
    assert missing.to_dict("records") == [{"eui64": "00DB123400000001", "has": "ka"}]
    assert fr.orphans(f).empty
    assert fr.keys_by_state(f).to_dict("records") == [
        {"kind": "key pair", "purpose": "ca", "state": "active", "keys": 2, "rotation_overdue": 0, "expired": 0}
    ]


def test_orphans_name_stray_keys_and_keyless_cas(estate: Workspace) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from ceremony.record.inventory import key_row

    root_key = estate.inventory.ca("root").key_label
    keys = fr.frames(estate).asymmetric_keys
    token = str(keys.loc[keys["label"] == root_key, "token"].iloc[0])  # the workspace's token label
    stray = key_row(token, "ca-left-over", ec.generate_private_key(ec.SECP256R1()).public_key(),
                    key_store="software", purpose="ca", origin="generated", ceremony_id=None,
                    created_at=estate.clock.now())  # fmt: skip
    with estate.inventory.transaction() as db:
        estate.inventory.record_key(db, stray)
        estate.inventory.key_destroyed(db, token, root_key, "2026-11-30T00:00:00+00:00")
    found = fr.orphans(fr.frames(estate)).to_dict("records")
    assert found == [
        {"kind": "key without a CA", "name": f"{token}/ca-left-over"},
        {"kind": "CA key not in the key inventory", "name": "root"},
    ]


def test_inventory_show_a_device_and_a_serial(estate: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    estate.close()
    base = ["--workspace", str(estate.root), "inventory", "show"]
    assert main([*base, "00db123400000001"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device 00DB123400000001: 2 certificate(s); no valid ds")
    assert "CA chain: issuing <- root" in out and "(keyCompromise; asked by bob, approved by alice)" in out
    serial = out.split("certificate ", 2)[1].split()[0]
    assert main([*base, serial.lower()]) == 0
    assert capsys.readouterr().out.startswith(f"certificate {serial} from issuing")
    assert main([*base, "nothing"]) == 2
    assert "no certificate with serial nothing" in capsys.readouterr().err


def _kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's dtype, a categorical as "category" (its categories are the data's, not the schema's)."""
    return {k: "category" if isinstance(v, pd.CategoricalDtype) else str(v) for k, v in frame.dtypes.items()}


def test_exports_have_the_frames_columns_and_types(estate: Workspace, tmp_path: Path) -> None:
    """One schema: the CLI's Parquet and CSV are the frames' certificate columns, revocation included, and the
    filters still select (the Parquet export once lacked ``revoked_at`` and ``revocation_reason``)."""
    certificates = fr.frames(estate).certificates
    estate.close()
    base = ["--workspace", str(estate.root), "inventory", "export"]
    assert main([*base, "--format", "parquet", "--out", str(tmp_path / "all.parquet")]) == 0
    frame = pd.read_parquet(tmp_path / "all.parquet")
    assert list(frame.columns) == list(certificates.columns) == list(CERTIFICATE_FRAME_COLUMNS)
    assert _kinds(frame) == _kinds(certificates)
    assert frame["issued_at"].is_monotonic_increasing and len(frame) == len(certificates) == 8
    assert main([*base, "--format", "parquet", "--status", "revoked", "--out", str(tmp_path / "revoked.parquet")]) == 0
    revoked = pd.read_parquet(tmp_path / "revoked.parquet")
    assert revoked[["eui64", "usage", "revocation_reason"]].astype(str).values.tolist() == [
        ["00DB123400000001", "ds", "keyCompromise"]
    ]
    assert revoked["revoked_at"].notna().all() and _kinds(revoked) == _kinds(certificates)
    assert main([*base, "--format", "csv", "--profile", "ss1sp-device", "--out", str(tmp_path / "devices.csv")]) == 0
    text = pd.read_csv(tmp_path / "devices.csv", dtype=str)
    assert list(text.columns) == list(CERTIFICATE_FRAME_COLUMNS) and len(text) == 6
    assert text.loc[text["status"] == "revoked", "revocation_reason"].tolist() == ["keyCompromise"]
    assert set(text["not_after"]) == {"9999-12-31T23:59:59+00:00"}  # as stored, ISO 8601


def test_a_parquet_export_is_streamed_in_row_groups(estate: Workspace, tmp_path: Path) -> None:
    """Memory stays bounded: one row group per chunk, and the chunks' categories read back as one frame."""
    import pyarrow.parquet as pq

    out = tmp_path / "chunked.parquet"
    assert fr.export_parquet(estate, out, {"issuer_ca": "issuing"}, chunk=4) == 6
    assert pq.ParquetFile(out).metadata.num_row_groups == 2
    frame = pd.read_parquet(out)
    assert sorted(frame["usage"].cat.categories) == ["ds", "ka"] and frame["usage"].value_counts().to_dict() == {
        "ds": 3, "ka": 3,
    }  # fmt: skip
    assert fr.export_parquet(estate, tmp_path / "none.parquet", {"eui64": "0000000000000000"}) == 0
    assert list(pd.read_parquet(tmp_path / "none.parquet").columns) == list(CERTIFICATE_FRAME_COLUMNS)


def _readme_snippets() -> str:
    """The Python blocks of the README's "Analysing the inventory" section, as written there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Analysing the inventory\n", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 3, "the README's analyst section has its three questions"
    return "\n".join(blocks)


def test_the_readme_answers_the_analysts_first_questions_from_an_export(
    estate: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = fr.frames(estate)
    estate.close()
    monkeypatch.chdir(tmp_path)
    argv = ["--workspace", str(estate.root), "inventory", "export", "--format", "parquet"]
    assert main([*argv, "--out", "certificates.parquet"]) == 0
    answers: dict[str, object] = {}
    exec(compile(_readme_snippets(), "README.md", "exec"), answers)  # noqa: S102 - the README's own snippets
    never = answers["never_by_profile"]
    assert isinstance(never, pd.Series) and never.to_dict() == {"ss1sp-device": 5}
    buckets = fr.expiry_buckets(f, datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert buckets.loc[buckets["bucket"] == fr.NEVER, "certificates"].sum() == 5
    lacking = answers["lacking"]
    assert isinstance(lacking, pd.DataFrame)
    assert lacking.astype(str).to_dict("records") == [{"eui64": "00DB123400000001", "usage": "ka"}]
    assert fr.devices_missing_usage(f).to_dict("records") == [{"eui64": "00DB123400000001", "has": "ka"}]
    by_reason = answers["by_reason"]
    assert isinstance(by_reason, pd.Series) and by_reason.to_dict() == {("issuing", "keyCompromise"): 1}
    assert fr.revocations_by_reason(f)["revoked"].tolist() == [1]
    month = f.certificates["revoked_at"].dropna().dt.strftime("%Y-%m").tolist()
    per_month = answers["revoked_per_month"]
    assert isinstance(per_month, pd.Series) and per_month.to_dict() == {month[0]: 1}


@pytest.mark.slow
def test_the_explorer_notebook_runs_headless_and_draws(estate: Workspace, tmp_path: Path) -> None:
    from ceremony.reporting.notebooks import run_notebook

    estate.close()
    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "70-inventory-explorer.ipynb"
    params = {
        "workspace": str(estate.root),
        "as_of": "2027-01-01",
        "out_dir": str(tmp_path / "out"),
        "export": "parquet,csv",
    }
    run_notebook(notebook, params, reports_dir=tmp_path / "reports", progress=False)
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert made == [
        "calendar.png", "certificates.csv", "certificates.parquet", "expiry.png", "issuance.png", "keys.png",
        "revocations.png",
    ]  # fmt: skip
    assert all((tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG" for name in made if name.endswith(".png"))


def test_real_dcc_certificates_import_classified_with_findings(
    ca_workspace: Workspace, smki_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_workspace.close()
    base = ["--workspace", str(ca_workspace.root), "inventory", "import", "--by", "bob"]
    paths = [str(smki_vectors / "device"), str(smki_vectors / "organisation")]
    assert main([*base, *paths, "--jobs", "2"]) == 0
    assert capsys.readouterr().out.strip() == (
        "imported 433 certificates (smki-device 400, smki-organisation 33); 0 already in the inventory"
    )
    assert main([*base, str(smki_vectors / "organisation")]) == 0
    assert "imported 0 certificates (none); 33 already in the inventory" in capsys.readouterr().out
    ws = Workspace.open(ca_workspace.root)
    f = fr.frames(ws)
    imported = f.certificates[f.certificates["approved_by"] == "import"]
    assert len(imported) == 433 and imported["issuer_ca"].astype(str).str.startswith("ext:").all()
    devices = imported[imported["profile"] == "smki-device"]
    assert devices["eui64"].str.len().eq(16).all() and set(devices["usage"].astype(str)) == {"ds", "ka"}
    # Foreign issuers are not CAs of this workspace: the orphans view says so.
    assert (fr.orphans(f)["kind"] == "certificate without its CA").sum() == 433
    warnings = ws.inventory._execute("SELECT COUNT(*) FROM findings WHERE severity = 'WARNING'").fetchone()[0]
    assert warnings == 6  # the six missing AKIs PROVENANCE.md lists
    ws.close()


def test_the_snapshot_equals_the_database_and_follows_every_change(estate: Workspace) -> None:
    from_db = fr.certificates_frame(estate, snapshot=False)
    first = fr.certificates_frame(estate)  # written now
    assert (estate.root / fr.SNAPSHOT).exists()
    pd.testing.assert_frame_equal(first, from_db)
    pd.testing.assert_frame_equal(fr.certificates_frame(estate), from_db)  # read back from the snapshot
    revoke(estate, ca_name="issuing", eui64="00DB123400000002", usage="ka", reason="superseded",
           requested_by="bob", approved_by="alice")  # fmt: skip
    after = fr.certificates_frame(estate)
    assert after["status"].value_counts()["revoked"] == 2
    pd.testing.assert_frame_equal(after, fr.certificates_frame(estate, snapshot=False))


def test_vectorised_views_agree_with_a_row_by_row_reading(tmp_path: Path) -> None:
    """The views over 3,000 synthetic rows, against the same questions answered one row at a time."""
    from collections import Counter

    from bench.synthetic import make_inventory

    f = fr.frames(make_inventory(tmp_path / "ws", 3000, purpose="test"))
    when = datetime(2029, 6, 1, tzinfo=timezone.utc)
    rows = f.certificates.to_dict("records")

    def bucket(not_after: pd.Timestamp) -> str:
        if not_after.year >= 9999:
            return fr.NEVER
        days = (not_after - pd.Timestamp(when)) // pd.Timedelta(days=1)
        return next((label for limit, label in fr.EXPIRY_BUCKETS if days < limit), "> 5 years")

    expected = Counter((bucket(r["not_after"]), r["profile"]) for r in rows if r["status"] == "valid")
    got = fr.expiry_buckets(f, when).set_index(["bucket", "profile"])["certificates"].to_dict()
    assert got == dict(expected) and len({b for b, _ in got}) >= 3

    months = Counter((f"{r['issued_at']:%Y-%m}", r["profile"]) for r in rows)
    assert fr.issuance_per_month(f).set_index(["month", "profile"])["certificates"].to_dict() == dict(months)

    usages: dict[str, set[str]] = {}
    for r in rows:
        if r["status"] == "valid" and "device" in r["profile"]:
            usages.setdefault(r["eui64"], set()).add(r["usage"])
    lonely = sorted((e, u.pop()) for e, u in usages.items() if len(u) == 1)
    missing = fr.devices_missing_usage(f)
    assert list(zip(missing["eui64"], missing["has"], strict=True)) == lonely and lonely
