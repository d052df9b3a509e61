"""The command line's frame: one-line usage errors (exit 2), every command group registered once."""

from __future__ import annotations

import pytest

from ceremony.cli.main import build_parser, main


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_every_command_of_the_contract_is_registered() -> None:
    # DESIGN.md's command line is a contract: scripts depend on these names.
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    names = set(sub.choices)  # type: ignore[arg-type]
    contract = {"init", "demo", "run", "approve", "issue", "revoke", "crl", "lint", "inventory", "transcript"}
    contract |= {"checks", "evidence"}
    assert contract <= names, sorted(contract - names)
