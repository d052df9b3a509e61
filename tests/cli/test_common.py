"""What every command group shares: usage errors in one line with exit 2, the workspace a command names, JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ceremony.cli.common import Parser, opened, print_json, register_path, workspace_dir
from ceremony.errors import InputError
from ceremony.model.config import data_dir
from ceremony.record.workspace import Workspace, init_workspace


def _parser() -> Parser:
    parser = Parser(prog="ceremony issue")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--usage", choices=["ds", "ka"])
    return parser


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --ca"),
        (["--ca", "issuing", "--usage", "xx"], "argument --usage: invalid choice: 'xx' (choose from ds, ka)"),
        (["--ca", "issuing", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_rejected_usage_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # no usage block
    assert err.startswith("ceremony issue: ")
    # argparse's wording of choices changed across Python versions ('ds', 'ka' vs ds, ka).
    assert err.replace("'ds', 'ka'", "ds, ka") == f"ceremony issue: {message}\n"


def test_accepted_usage_parses() -> None:
    assert vars(_parser().parse_args(["--ca", "issuing", "--usage", "ka"])) == {"ca": "issuing", "usage": "ka"}


@pytest.mark.parametrize(
    ("flag", "variable", "expected"),
    [
        ("ws-flag", "ws-env", "ws-flag"),
        (None, "ws-env", "ws-env"),
        (None, None, "workspace"),
        ("", "ws-env", "ws-env"),
    ],
)
def test_workspace_dir_is_the_flag_else_the_variable_else_workspace(
    monkeypatch: pytest.MonkeyPatch, flag: str | None, variable: str | None, expected: str
) -> None:
    if variable is None:
        monkeypatch.delenv("CEREMONY_WORKSPACE", raising=False)
    else:
        monkeypatch.setenv("CEREMONY_WORKSPACE", variable)
    assert workspace_dir(argparse.Namespace(workspace=flag)) == Path(expected)


def test_register_path_is_the_flag_else_the_workspace_s_else_the_example(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CEREMONY_REGISTER", raising=False)
    ws = tmp_path / "ws"
    assert register_path(argparse.Namespace(register="people.yaml", workspace=str(ws))) == Path("people.yaml")
    assert register_path(argparse.Namespace(register=None, workspace=str(ws))) == data_dir() / "people.yaml"
    ws.mkdir()
    (ws / "people.yaml").write_text("schema_version: 1\n", encoding="utf-8")
    assert register_path(argparse.Namespace(register=None, workspace=str(ws))) == ws / "people.yaml"


def test_opened_closes_the_workspace_whatever_happens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", key_store="software", purpose="test").close()
    closed: list[Path] = []
    real_close = Workspace.close

    def close(self: Workspace) -> None:
        closed.append(self.root)
        real_close(self)

    monkeypatch.setattr(Workspace, "close", close)
    args = argparse.Namespace(workspace=str(tmp_path / "ws"))
    with opened(args) as ws:
        assert ws.root == (tmp_path / "ws").resolve()
    with pytest.raises(RuntimeError, match="mid-command"), opened(args):
        raise RuntimeError("mid-command")
    assert closed == [(tmp_path / "ws").resolve()] * 2


def test_opened_refuses_a_directory_that_is_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a workspace"), opened(argparse.Namespace(workspace=str(tmp_path))):
        pass


def test_print_json_indents_and_keeps_key_order(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"b": 1, "a": [1, "x"]})
    out = capsys.readouterr().out
    assert out == '{\n  "b": 1,\n  "a": [\n    1,\n    "x"\n  ]\n}\n'
    assert json.loads(out) == {"b": 1, "a": [1, "x"]}
