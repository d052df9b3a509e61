"""`ceremony approve | run | transcript`: usage errors of the ceremony commands, one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.cli.main import main


def test_a_parameter_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("ca_name: one\n")
    assert main(["run", "notebooks/30-issue-certificates.ipynb", "-f", str(params), "-p", "ca_name", "two"]) == 2
    assert "parameter ca_name given both in" in capsys.readouterr().err


def test_diff_of_a_missing_transcript_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcript", "diff", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "no such transcript" in err and err.count("\n") == 1
