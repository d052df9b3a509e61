"""`ceremony keys`: the symmetric key inventory from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.record.workspace import Workspace


def test_overdue_on_a_workspace_without_symmetric_keys_says_so(
    ca_workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--workspace", str(ca_workspace.root), "keys", "overdue"]) == 0
    assert "no active key is past its rotation date or crypto-period" in capsys.readouterr().out


def test_export_never_overwrites(ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "taken.json"
    out.write_text("x")
    assert main(["--workspace", str(ca_workspace.root), "keys", "export", "k1", "--kek", "t", "--out", str(out)]) == 2
    assert "exports never overwrite" in capsys.readouterr().err
    assert out.read_text() == "x"
