"""One valid certificate per identity, enforced by the inventory; batch ids nobody can guess; a bundle path
checked before anything is signed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ceremony.errors import StateError
from ceremony.issue.batch import check_bundle_path, issue_batch
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list


def _batch(ws: Workspace, devices: Path, *, rekey: bool = False) -> str:
    return issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", approved_by="bob", progress=False,
                       devices=devices, rekey=rekey).batch_id  # fmt: skip


def _claims(ws: Workspace) -> list[tuple[str, str, int]]:
    rows = ws.inventory._execute(
        "SELECT eui64, usage, generation FROM valid_identities ORDER BY eui64, usage, generation"
    )
    return [tuple(r) for r in rows]


def test_a_batch_id_is_unguessable_and_a_second_run_finds_the_batch(ca_workspace: Workspace, tmp_path: Path) -> None:
    devices = device_list(tmp_path / "list", 2)
    first = _batch(ca_workspace, devices)
    assert first.startswith("b-") and len(first.split("-")) == 3
    assert _batch(ca_workspace, devices) == first  # the same list again: the same (complete) batch
    assert ca_workspace.inventory.count() == 2 + 4


def test_a_reissue_is_refused_by_the_inventory_and_a_rekey_claims_the_next_generation(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    devices = device_list(tmp_path / "list", 1)
    _batch(ca_workspace, devices)
    assert _claims(ca_workspace) == [("00DB123400000001", "ds", 0), ("00DB123400000001", "ka", 0)]
    row = ca_workspace.inventory.valid_certificates_of_device("issuing", "00DB123400000001", "ds")[0]
    again = type(row)(**{**row.__dict__, "serial": "7" * 32, "fingerprint": "f" * 64})
    with pytest.raises(StateError, match=r"^EUI-64 00DB123400000001 already has a valid ds certificate from issuing"):
        with ca_workspace.inventory.transaction() as db:
            ca_workspace.inventory.add_certificate(db, again, claim="first")
    assert ca_workspace.inventory.certificate("issuing", "7" * 32) is None  # nothing of it recorded
    _batch(ca_workspace, devices, rekey=True)  # the approved re-key: the old certificates stay valid beside
    assert [g for _, _, g in _claims(ca_workspace)] == [0, 1, 0, 1]
    assert len(ca_workspace.inventory.valid_certificates_of_device("issuing", "00DB123400000001")) == 4


def test_a_link_on_the_bundle_path_is_refused_before_anything_is_signed(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    batches_dir = ca_workspace.root / "artifacts" / "batches"
    batches_dir.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path, batches_dir)
    with pytest.raises(StateError, match="is a symbolic link or not a directory; nothing was issued"):
        _batch(ca_workspace, device_list(tmp_path / "list", 1))
    assert ca_workspace.inventory.count() == 2
    assert not ca_workspace.inventory._execute("SELECT * FROM batches").fetchall()
    batches_dir.unlink()
    batches_dir.mkdir()
    os.symlink(tmp_path / "elsewhere.pem", batches_dir / "b-x-1.pem")
    with pytest.raises(StateError, match=r"b-x-1.pem is already there \(a symbolic link\) before batch b-x-1"):
        check_bundle_path(ca_workspace, "b-x-1", new=False)
