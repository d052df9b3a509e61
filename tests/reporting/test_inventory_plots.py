"""The inventory explorer's parameters, figures (write-once PNGs with their tables) and exports."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from ceremony.errors import InputError, StateError
from ceremony.issue.batch import issue_batch
from ceremony.issue.revocation import revoke
from ceremony.record.frames import frames
from ceremony.record.workspace import Workspace
from ceremony.reporting import inventory_plots as plots
from ceremony.reporting.cells import Shown
from tests.conftest import SUITE_TIME
from tests.support.ceremony_files import device_list

PNG = b"\x89PNG"


@pytest.fixture
def key_store_kind() -> str:
    return "software"


@pytest.fixture
def estate(ca_workspace: Workspace, tmp_path: Path) -> Path:
    """Two CAs, three devices (DS and KA each), one device revoked; closed, as a notebook finds it."""
    devices = device_list(tmp_path / "fleet", 3)
    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
                progress=False)  # fmt: skip
    revoke(ca_workspace, ca_name="issuing", eui64="00DB123400000001", reason="keyCompromise", requested_by="bob",
           approved_by="alice")  # fmt: skip
    ca_workspace.close()
    return ca_workspace.root


@pytest.mark.parametrize(
    ("export", "formats"),
    [("", set()), (None, set()), ("parquet", {"parquet"}), (" csv , parquet ", {"csv", "parquet"}), ("csv,", {"csv"})],
)
def test_export_formats(export: str | None, formats: set[str]) -> None:
    assert plots.export_formats(export) == formats


def test_an_unknown_export_format_is_one_line_naming_it() -> None:
    with pytest.raises(InputError) as caught:
        plots.export_formats("parquet,xml,json")
    assert caught.value.message == "export: json, xml is not one of parquet, csv (got 'parquet,xml,json')"


def test_as_of() -> None:
    now = datetime(2026, 12, 1, 10, 30, tzinfo=timezone.utc)
    assert plots.parse_as_of(None, now) == now and plots.parse_as_of("", now) == now
    assert plots.parse_as_of("2027-01-01", now) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert plots.parse_as_of("2027-01-01T10:00:00+01:00", now) == datetime(2027, 1, 1, 9, tzinfo=timezone.utc)
    with pytest.raises(InputError) as caught:
        plots.parse_as_of("next tuesday", now)
    assert caught.value.message == "as_of: 'next tuesday' is not a date (YYYY-MM-DD)"


def test_the_default_output_directory_is_stamped_by_the_clock_given(tmp_path: Path) -> None:
    out = plots.output_dir(None, datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=timezone.utc), tmp_path / "r")
    assert out == tmp_path / "r" / "inventory-20261201T100000.123456Z" and out.is_dir()
    assert plots.output_dir(tmp_path / "mine", SUITE_TIME) == tmp_path / "mine"
    assert plots.output_dir("rel", SUITE_TIME) == Path("rel").resolve()  # printed paths name the file anywhere


def test_explore_uses_the_workspaces_clock(estate: Path) -> None:
    x = plots.explore(estate)
    assert x.as_of.date() == SUITE_TIME.date() and x.as_of.tzinfo is not None  # the pinned time, not the machine's
    # The plots belong to the workspace, like its runs and packs.
    assert x.out.parent == estate.resolve() / "reports" and x.out.name.startswith("inventory-20261201T10")
    assert x.inventory.rows == 2 + 6 and x.formats == frozenset() and x.inventory.labels == {}
    assert plots.headline(x).startswith("8 certificates, 2 CAs, 0 symmetric keys, ")
    assert plots.headline(x).endswith(f"as of 2026-12-01; output {x.out}")


def test_a_bad_export_is_refused_before_anything_is_read_or_written(estate: Path) -> None:
    with pytest.raises(InputError, match="export: xml"):
        plots.explore(estate, export="xml")
    assert not Path("reports").exists() and not (estate / "reports").exists()


def test_each_figure_is_a_png_with_its_table(estate: Path, tmp_path: Path) -> None:
    x = plots.explore(estate, as_of="2027-01-01", out_dir=str(tmp_path / "out"))
    expiry = plots.draw_expiry(x)
    assert expiry.pictures == [tmp_path / "out" / "expiry.png"]
    assert expiry.texts == [f"saved `{tmp_path / 'out' / 'expiry.png'}`"]  # the notebook says where it went
    assert int(expiry.table.to_numpy().sum()) == 2 + 4  # valid: two CA certificates, four device certificates
    issuance = plots.draw_issuance(x)
    assert issuance.table.loc["2026-12"].sum() == 8
    revocations = plots.draw_revocations(x)
    assert revocations.table.to_dict("records") == [
        {"issuer_ca": "issuing", "revocation_reason": "keyCompromise", "revoked": 2}
    ]
    keys = plots.draw_keys(x)
    assert set(keys.table["kind"]) == {"key pair"} and keys.pictures
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert made == ["expiry.png", "issuance.png", "keys.png", "revocations.png"]
    assert all((tmp_path / "out" / name).read_bytes()[:4] == PNG for name in made)
    # Write-once: a second drawing into the same directory is refused, the first kept.
    with pytest.raises(StateError, match="already exists; plots and exports are write-once"):
        plots.draw_expiry(x)


def test_without_revocations_or_keys_there_is_a_table_and_no_figure(ca_workspace: Workspace, tmp_path: Path) -> None:
    ca_workspace.close()
    x = plots.explore(ca_workspace.root, out_dir=tmp_path / "out")
    empty = plots.draw_revocations(x)
    assert empty.pictures == [] and empty.table.empty
    assert plots.draw_issuance(x).pictures and not (tmp_path / "out" / "revocations.png").exists()


def test_the_device_and_ceremony_views(estate: Path, tmp_path: Path) -> None:
    x = plots.explore(estate, out_dir=tmp_path / "out")
    missing = plots.missing_usage(x)
    assert missing.texts == ["0 device(s) with a valid certificate for one usage only"] and missing.table.empty
    assert "transcript" not in plots.ceremonies(x).columns
    lineage = plots.ca_lineage(x).set_index("name")
    assert (lineage.loc["issuing", "valid"], lineage.loc["issuing", "revoked"]) == (4, 2)
    assert plots.by_profile_usage_role(x)["certificates"].sum() == 8 and plots.orphans(x).empty


def test_ad_hoc_questions_load_only_the_rows_and_columns_asked_for(estate: Path, tmp_path: Path) -> None:
    x = plots.explore(estate, out_dir=tmp_path / "out")
    revoked = plots.certificates(x, ["eui64", "usage", "revocation_reason"], {"status": "revoked"})
    assert list(revoked.columns) == ["eui64", "usage", "revocation_reason"]
    assert revoked.astype(str).values.tolist() == [
        ["00DB123400000001", "ds", "keyCompromise"], ["00DB123400000001", "ka", "keyCompromise"],
    ]  # fmt: skip
    assert isinstance(revoked["usage"].dtype, pd.CategoricalDtype)
    assert len(plots.certificates(x, where={"profile": ["ss1spca-root", "ss1spca-issuing"]})) == 2
    assert len(plots.certificates(x, ["serial"], limit=3)) == 3


def test_exports_are_written_once_in_the_formats_asked_for(estate: Path, tmp_path: Path) -> None:
    x = plots.explore(estate, out_dir=tmp_path / "out", export="parquet,csv")
    assert plots.export_certificates(x) == [
        str(tmp_path / "out" / n) for n in ("certificates.csv", "certificates.parquet")
    ]
    frame = pd.read_parquet(tmp_path / "out" / "certificates.parquet")
    assert len(frame) == 8 and str(frame["not_after"].dtype) == "datetime64[us, UTC]"
    # Streamed from the snapshot, the export is the typed frame of every certificate, and so is the CSV as text.
    whole = frames(estate).certificates
    pd.testing.assert_frame_equal(frame, whole, check_categorical=False)
    text = pd.read_csv(tmp_path / "out" / "certificates.csv", dtype=str, keep_default_na=False)
    assert text.values.tolist() == pd.read_csv(io.StringIO(whole.to_csv(index=False)), dtype=str,
                                               keep_default_na=False).values.tolist()  # fmt: skip
    with pytest.raises(StateError, match="already exists"):
        plots.export_certificates(x)
    only_plots = plots.explore(estate, out_dir=tmp_path / "plots")
    assert plots.export_certificates(only_plots) == []


def test_a_shown_value_displays_its_parts_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython import display as ipython

    shown: list[object] = []
    monkeypatch.setattr(ipython, "display", lambda *objs: shown.extend(objs))
    png = tmp_path / "a.png"
    png.write_bytes(PNG + b"\r\n\x1a\n")
    frame = pd.DataFrame({"a": ["<b>x</b>"]})
    Shown(("**text**", png, frame))._ipython_display_()
    assert [type(o).__name__ for o in shown] == ["Markdown", "Image", "DataFrame"]
    shown.clear()
    Shown((frame,), report=True)._ipython_display_()
    [html] = shown
    assert type(html).__name__ == "HTML" and "&lt;b&gt;x&lt;/b&gt;" in html.data and "<style>" in html.data  # type: ignore[attr-defined]
