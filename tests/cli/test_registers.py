"""`ceremony registers record|status` through main()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.record.workspace import init_workspace
from tests.support.ceremony_files import write_register


def test_record_then_status_then_an_unrecorded_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ws"
    init_workspace(root, key_store="software", purpose="test").close()
    write_register(root)
    ws = ["--workspace", str(root)]
    assert main([*ws, "registers", "status"]) == 1
    assert "people.yaml: never recorded" in capsys.readouterr().out
    assert main([*ws, "registers", "record", "--by", "alice", "--reason", "set-up", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recorded"] == ["people.yaml"]
    assert main([*ws, "registers", "status"]) == 0
    assert "people.yaml: recorded by alice at " in capsys.readouterr().out
    (root / "people.yaml").write_text((root / "people.yaml").read_text() + "# edited\n")
    assert main([*ws, "registers", "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["registers"][0]["state"] == "changed"


def test_a_recorder_without_the_role_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ws"
    init_workspace(root, key_store="software", purpose="test").close()
    write_register(root)
    assert main(["--workspace", str(root), "registers", "record", "--by", "bob", "--reason", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ceremony: --by: bob is not registered as an administrator or compliance officer in people.yaml"]
