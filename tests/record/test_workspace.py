"""Workspaces: layout, secrets kept 0600 and out of workspace.yaml, refusal of non-empty folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ceremony.errors import InputError, TokenError
from ceremony.record.workspace import Workspace, init_workspace


def test_layout_and_secret_modes(tmp_path: Path, key_store_kind: str) -> None:
    ws = init_workspace(tmp_path / "ws", key_store=key_store_kind, purpose="test")  # type: ignore[arg-type]
    assert ws.config.key_store.kind == key_store_kind
    for sub in ("artifacts", "transcripts", "secrets", "share-cards"):
        assert (ws.root / sub).is_dir()
    for secret in (ws.root / "secrets").iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        # No secret value is written anywhere else in the workspace.
        value = secret.read_text().strip()
        for other in ws.root.rglob("*"):
            if other.is_file() and "secrets" not in other.parts and "token" not in other.parts:
                assert value not in other.read_text(errors="ignore")
    assert stat.S_IMODE((ws.root / "secrets").stat().st_mode) == 0o700
    assert ws.journal.entries()[0]["event"] == "workspace.init"
    ws.close()


def test_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x").write_text("x")
    with pytest.raises(InputError, match="exists and is not empty"):
        init_workspace(tmp_path / "ws", key_store="software", purpose="test")


def test_opening_a_folder_that_is_no_workspace(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a workspace"):
        Workspace.open(tmp_path)


@pytest.mark.plants_secrets  # a 0644 secret file is the point of the test
def test_a_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    ws.close()
    secret = tmp_path / "ws" / "secrets" / "software-store.passphrase"
    secret.chmod(0o644)
    with pytest.raises(TokenError, match="readable by its owner only"):
        Workspace.open(tmp_path / "ws").key_store  # noqa: B018 - opening the store reads the secret
