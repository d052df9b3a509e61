"""Notebook 40's revocation and publication: what its parameters ask for, and the lines it prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ceremony.errors import InputError
from ceremony.issue.batch import issue_batch
from ceremony.issue.revocation import Revoked
from ceremony.record import frames as fr
from ceremony.record.workspace import Workspace
from ceremony.reporting import revocation_report
from ceremony.reporting.notebooks import notebooks_dir, run_notebook
from tests.support.ceremony_files import device_list

DEVICE = "00DB123400000001"  # the first device of tests.support.ceremony_files.device_list


@pytest.fixture
def key_store_kind() -> str:
    return "software"


@pytest.fixture
def fleet(ca_workspace: Workspace, tmp_path: Path) -> Workspace:
    devices = device_list(tmp_path / "fleet", 2)
    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
                progress=False)  # fmt: skip
    return ca_workspace


def _revoke(ws: Workspace, **named: str | None) -> list[Revoked]:
    return revocation_report.revoke_requested(
        ws, ca="issuing", reason="superseded", requested_by="bob", approved_by="alice", **named
    )


def test_naming_nothing_revokes_nothing(fleet: Workspace) -> None:
    assert _revoke(fleet) == [] and _revoke(fleet, serial="", eui64="") == []
    assert revocation_report.revocation_lines([]) == ["nothing to revoke: publishing only"]
    assert set(fr.frames(fleet).certificates["status"]) == {"valid"}


def test_an_eui64_revokes_both_usages_and_one_line_each(fleet: Workspace) -> None:
    revoked = _revoke(fleet, eui64=DEVICE)
    assert sorted(r.usage for r in revoked) == ["ds", "ka"]
    lines = revocation_report.revocation_lines(revoked)
    assert len(lines) == 2
    pattern = rf"revoked [0-9A-F]{{32}} \({DEVICE} (ds|ka)\) from issuing: superseded at 2026-12-01T.*"
    assert all(re.fullmatch(pattern, line) for line in lines)


def test_one_usage_and_one_serial(fleet: Workspace) -> None:
    [ka] = _revoke(fleet, eui64=DEVICE, usage="ka")
    assert ka.usage == "ka"
    [record] = [c for c in fleet.inventory.certificates_of_device("00DB123400000002") if c.usage == "ds"]
    [by_serial] = _revoke(fleet, serial=record.serial.lower())
    assert (by_serial.serial, by_serial.eui64, by_serial.usage) == (record.serial, "00DB123400000002", "ds")


def test_revoke_still_refuses_what_it_refuses(fleet: Workspace) -> None:
    with pytest.raises(InputError, match="--reason must be one of"):
        revocation_report.revoke_requested(
            fleet, ca="issuing", reason="bored", requested_by="bob", approved_by="alice", eui64=DEVICE
        )


def test_the_crl_then_the_roots_arl(fleet: Workspace) -> None:
    _revoke(fleet, eui64=DEVICE)
    published = revocation_report.publish_lists(fleet, "issuing", by="bob")
    assert [(p.kind, p.ca, p.number, p.entries) for p in published] == [("crl", "issuing", 1, 2), ("arl", "root", 1, 0)]
    lines = revocation_report.publication_lines(published)
    assert re.fullmatch(
        r"CRL 1 of issuing: 2 entries, thisUpdate 2026-12-01 \d\d:\d\d:\d\dZ, nextUpdate 2026-12-08 \d\d:\d\d:\d\dZ, "
        r"\d+ bytes, sha256 [0-9a-f]{16}…",
        lines[0],
    )
    assert lines[1].startswith("ARL 1 of root: 0 entries")
    assert [p.kind for p in revocation_report.publish_lists(fleet, "issuing", by="bob", arl=False)] == ["crl"]
    # The root has no issuer: its own list is the ARL, and there is nothing above it to publish.
    assert [(p.kind, p.number) for p in revocation_report.publish_lists(fleet, "root", by="bob")] == [("arl", 2)]


def test_notebook_40_revokes_and_publishes(fleet: Workspace, tmp_path: Path) -> None:
    fleet.close()
    params = {"workspace": str(fleet.root), "ca": "issuing", "eui64": DEVICE}
    run_notebook(notebooks_dir() / "40-revoke-and-publish-crl.ipynb", params, reports_dir=tmp_path / "reports")
    ws = Workspace.open(fleet.root)
    journal = ws.journal.entries()
    assert [e["kind"] for e in journal if e["event"] == "crl.publish"] == ["crl", "arl"]
    revoked = fr.frames(ws).certificates.query("status == 'revoked'")
    assert sorted(revoked["usage"].astype(str)) == ["ds", "ka"] and set(revoked["eui64"]) == {DEVICE}
    ws.close()
