"""`ceremony activate`: refused input is one line, exit 2, and changes nothing (the live flow is in
tests/procedures/test_activation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.record.workspace import init_workspace


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    init_workspace(tmp_path / "ws", key_store="software", purpose="test").close()
    return tmp_path / "ws"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--minutes", "0"], "--minutes must be between 1 and 480 (the policy's limit; got 0)"),
        (["--operations", "99999999"], "--operations must be between 1 and 1000000 (the policy's limit; got 99999999)"),
        (
            [],
            "a software key store is opened with its passphrase (trial workspaces); activation is for a PKCS#11 token",
        ),
    ],
)
def test_refused_activation_is_one_line_and_changes_nothing(
    trial: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (trial / "journal.jsonl").read_bytes()
    assert main(["--workspace", str(trial), "activate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert (trial / "journal.jsonl").read_bytes() == before


def test_status_without_a_session_exits_1_and_end_says_there_was_none(
    trial: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--workspace", str(trial), "activate", "--status"]) == 1
    assert "is not activated" in capsys.readouterr().out
    assert main(["--workspace", str(trial), "activate", "--end"]) == 0
    out, err = capsys.readouterr()
    assert "no activation session" in out
    assert f"TEST WORKSPACE (not a live PKI): {trial}" in err
    with pytest.raises(SystemExit) as usage:
        main(["--workspace", str(trial), "activate", "--status", "--end"])
    assert usage.value.code == 2
