"""`ceremony abandon`: one line for bad usage (exit 2), what was done for an abandonment (issue K)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.cli.main import main
from ceremony.errors import StateError
from tests.support.ceremony_files import CEREMONIES, approve, live_workspace, run


def _failed_root(ws: Path) -> None:
    """The root ceremony fails at its certificate step, after its key was generated (a file is in the way)."""
    run(ws, CEREMONIES / "token-init.yaml")
    approve(ws, CEREMONIES / "root-ca.yaml")
    ceremony = procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    try:
        ceremony.step("activate")
        ceremony.step("generate-key")
        (ws / "artifacts" / "cas").mkdir(parents=True, exist_ok=True)
        (ws / "artifacts" / "cas" / "s1sp-root.pem").write_text("in the way\n")
        with pytest.raises(StateError):
            ceremony.step("issue-certificate")
    finally:
        ceremony.ws.close()


def test_abandon_destroys_the_key_and_says_what_to_do_next(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    _failed_root(ws)
    capsys.readouterr()
    base = ["--workspace", str(ws), "abandon", "root-ca-2026-12"]
    assert main([*base, "--witness", "wendy"]) == 2
    assert capsys.readouterr().err == ("ceremony: --witness: an abandonment is confirmed by 2 witnesses (got 1)\n")
    assert main([*base, "--witness", "wendy", "--witness", "victor", "--reason", "certificate file in the way"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:4] == [
        "ceremony root-ca-2026-12 (root-ca) abandoned: certificate file in the way",
        f"  failure:   step issue-certificate failed: {json.loads(_step_failed(ws))['message']}",
        "  witnesses: wendy, victor",
        "  destroyed: key 'ca-s1sp-root' on token 's1sp-ca-token'",
    ]
    assert lines[-1] == "next: give the corrected ceremony file a new ceremony_id, have it approved, and run it"
    assert "sealed as abandoned" in lines[-2] and "TEST WORKSPACE" in err
    transcript = ws / "transcripts" / "root-ca-2026-12.jsonl"
    # Intact, and sealed as abandoned.
    assert main(["--workspace", str(ws), "transcript", "verify", str(transcript)]) == 0
    assert "sealed as ABANDONED (certificate file in the way)" in capsys.readouterr().out
    assert main([*base, "--witness", "wendy", "--witness", "victor", "--json"]) == 2
    assert "is sealed as abandoned; only an unsealed ceremony is abandoned" in capsys.readouterr().err


def _step_failed(ws: Path) -> str:
    lines = (ws / "transcripts" / "root-ca-2026-12.jsonl").read_text().splitlines()
    return next(line for line in lines if '"event":"step.failed"' in line)
