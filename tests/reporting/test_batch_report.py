"""Notebook 30's summary and spot check: the bundle's ends linted and verified by openssl at the workspace's
time (a pinned clock honoured), and the notebook refusing to run without a device list."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ceremony.clock import pin
from ceremony.errors import InputError, StateError
from ceremony.issue.batch import BatchResult, issue_batch
from ceremony.record import frames as fr
from ceremony.record.workspace import Workspace
from ceremony.reporting import batch_report
from ceremony.reporting.notebooks import NotebookError, notebooks_dir, run_notebook
from tests.support.ceremony_files import device_list

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


@pytest.fixture
def key_store_kind() -> str:
    return "software"  # fast: the spot check reads files and the inventory, never the key


@pytest.fixture
def batch(ca_workspace: Workspace, tmp_path: Path) -> BatchResult:
    devices = device_list(tmp_path / "fleet", 3)
    return issue_batch(
        ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob", progress=False
    )


def test_the_summary_is_one_row_per_figure(batch: BatchResult) -> None:
    table = batch_report.batch_summary(batch)
    assert list(table.index)[:5] == ["batch", "requested", "issued now", "issued before (resumed)", "rejected"]
    assert table.loc["requested", "value"] == "6" and table.loc["issued now", "value"] == "6"
    assert table.loc["first serial", "value"] == batch.first_serial
    assert table.loc["bundle", "value"] == str(batch.bundle)


def test_the_bundle_ends_are_its_first_and_last_certificate(batch: BatchResult) -> None:
    assert batch.bundle is not None
    ends = batch_report.bundle_ends(batch.bundle)
    assert [position for position, _ in ends] == ["first", "last"]
    assert [f"{c.serial_number:032X}" for _, c in ends] == [batch.first_serial, batch.last_serial]


def test_a_bundle_of_one_has_one_end_and_a_bundle_of_none_is_refused(batch: BatchResult, tmp_path: Path) -> None:
    assert batch.bundle is not None
    text = batch.bundle.read_text()
    one = tmp_path / "one.pem"
    one.write_text(text[: text.index("-----END CERTIFICATE-----") + 26])
    assert [position for position, _ in batch_report.bundle_ends(one)] == ["only"]
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificates here\n")
    with pytest.raises(StateError, match="holds no PEM certificate"):
        batch_report.bundle_ends(empty)
    link = tmp_path / "link.pem"
    link.symlink_to(batch.bundle)
    with pytest.raises(StateError, match="cannot read the batch bundle"):
        batch_report.bundle_ends(link)


def test_the_chain_is_the_inventorys_ca_files_up_to_the_root(ca_workspace: Workspace) -> None:
    chain = batch_report.ca_chain(ca_workspace, "issuing")
    assert [p.relative_to(ca_workspace.root).as_posix() for p in chain] == [
        "artifacts/cas/issuing.pem", "artifacts/cas/root.pem"
    ]  # fmt: skip
    assert all(p.is_file() for p in chain)
    assert batch_report.ca_chain(ca_workspace, "root") == chain[1:]


@needs_openssl
def test_a_clean_batch_spot_checks_clean(ca_workspace: Workspace, batch: BatchResult) -> None:
    checks = batch_report.spot_check(ca_workspace, batch, "issuing", "ss1sp-device")
    assert [(c.position, c.serial, c.lint, c.openssl, c.ok) for c in checks] == [
        ("first", batch.first_serial, "clean", "OK", True),
        ("last", batch.last_serial, "clean", "OK", True),
    ]
    table = batch_report.spot_check_table(checks)
    assert list(table.columns) == ["certificate", "serial", "lint", "openssl"]
    assert list(table["openssl"]) == ["OK", "OK"]


@needs_openssl
def test_openssl_verifies_at_the_workspaces_pinned_time(ca_workspace: Workspace, batch: BatchResult) -> None:
    # The CA certificates run out long before the devices' 9999-12-31: at a time pinned past the root's
    # notAfter, openssl (given -attime) refuses the chain although the machine's date is years earlier.
    later = Workspace.open(ca_workspace.root, clock=pin(datetime(2070, 1, 1, tzinfo=timezone.utc)))
    try:
        checks = batch_report.spot_check(later, batch, "issuing", "ss1sp-device")
    finally:
        later.close()
    assert [c.lint for c in checks] == ["clean", "clean"]
    assert all(c.openssl is not None and "certificate has expired" in c.openssl and not c.ok for c in checks)
    early = batch_report.openssl_verify(
        batch.bundle.read_bytes(),  # type: ignore[union-attr]
        batch_report.ca_chain(ca_workspace, "issuing"),
        datetime(2020, 1, 1, tzinfo=timezone.utc),
    )
    assert "not yet valid" in early


@needs_openssl
def test_a_certificate_that_does_not_fit_the_profile_is_reported(ca_workspace: Workspace) -> None:
    # A "bundle" holding the root CA certificate: not a device certificate, and not issued by "issuing".
    root_pem = batch_report.ca_chain(ca_workspace, "root")[0]
    fake = BatchResult(batch_id="fake", requested=1, bundle=root_pem)
    [check] = batch_report.spot_check(ca_workspace, fake, "issuing", "ss1sp-device")
    assert check.position == "only" and check.problems and check.lint.startswith(("ERROR", "FATAL"))
    assert not check.ok


def test_without_openssl_the_lint_still_runs(
    ca_workspace: Workspace, batch: BatchResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ceremony.reporting.batch_report.shutil.which", lambda _: None)
    checks = batch_report.spot_check(ca_workspace, batch, "issuing", "ss1sp-device")
    assert [(c.lint, c.openssl, c.ok) for c in checks] == [("clean", None, True)] * 2
    assert list(batch_report.spot_check_table(checks)["openssl"]) == ["not installed"] * 2


def test_a_batch_without_a_bundle_has_nothing_to_check(ca_workspace: Workspace) -> None:
    assert batch_report.spot_check(ca_workspace, BatchResult("none", 0), "issuing", "ss1sp-device") == []
    assert batch_report.spot_check_table([]).empty


def test_openssl_verify_needs_a_chain() -> None:
    with pytest.raises(InputError, match="needs the CA chain"):
        batch_report.openssl_verify(b"", [], datetime(2026, 12, 1, tzinfo=timezone.utc))


def test_notebook_30_refuses_to_run_without_a_device_list(ca_workspace: Workspace, tmp_path: Path) -> None:
    ca_workspace.close()
    params = {"workspace": str(ca_workspace.root), "ca": "issuing"}
    with pytest.raises(NotebookError) as caught:
        run_notebook(notebooks_dir() / "30-issue-certificates.ipynb", params, reports_dir=tmp_path / "reports")
    message = caught.value.message
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "InputError: parameter devices is required: the approved device list (CSV)" in message
    # Nothing was generated or issued: no demo fleet, no batch.
    assert not (ca_workspace.root / "fleets").exists()
    assert fr.frames(ca_workspace.root).batches.empty


@pytest.mark.slow
def test_notebook_30_issues_the_list_it_is_given(ca_workspace: Workspace, tmp_path: Path) -> None:
    ca_workspace.close()
    devices = device_list(tmp_path / "fleet", 2)
    params = {"workspace": str(ca_workspace.root), "ca": "issuing", "devices": str(devices), "approved_by": "bob"}
    run_notebook(notebooks_dir() / "30-issue-certificates.ipynb", params, reports_dir=tmp_path / "reports")
    f = fr.frames(ca_workspace.root)
    [batch] = f.batches.to_dict("records")
    assert batch["status"] == "complete" and (ca_workspace.root / batch["bundle"]).is_file()
    assert int(f.certificates["batch_id"].notna().sum()) == 4
