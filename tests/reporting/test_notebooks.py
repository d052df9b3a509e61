"""Notebook runs: secret-looking names refused, parameters typed and checked, real papermill runs laid out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from ceremony.errors import CeremonyError, InputError
from ceremony.reporting.notebooks import (
    NotebookError,
    check_parameter_names,
    execute_with_nbclient,
    load_params_file,
    notebook_parameters,
    parse_cli_params,
    prepare_copy,
    run_notebook,
)

NOW = datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=timezone.utc)
PARAMETERS = 'workspace = "x"\nrehearsal = False\ncount = 1\nout = "out.json"'
WRITE = (
    "import json, pathlib\n"
    "pathlib.Path(out).write_text(json.dumps({'workspace': workspace, 'rehearsal': rehearsal, 'count': count}))\n"
    "print('wrote', out)"
)


def make_notebook(path: Path, *cells: str, parameters: str | None = PARAMETERS) -> Path:
    """A notebook with a ``parameters`` cell (unless None) followed by ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(c) for c in cells)
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize(
    "name, word",
    [
        ("user_pin", "pin"),
        ("PIN", "pin"),
        ("token-pin", "pin"),
        ("tokenPin", "pin"),
        ("userPIN", "pin"),
        ("kek_shares", "shares"),
        ("kekShares", "shares"),
        ("share", "share"),
        ("private_key_path", "private_key"),
        ("privateKey", "private_key"),
        ("mnemonic", "mnemonic"),
        ("components", "components"),
        ("kek_component", "component"),
        ("so_passphrase", "passphrase"),
        ("Password", "password"),
        ("client_secret", "secret"),
        ("pin2", "pin"),
    ],
)
def test_secret_looking_names_are_refused(name: str, word: str) -> None:
    with pytest.raises(InputError) as err:
        check_parameter_names(["workspace", name])
    assert err.value.message == (
        f"parameter {name!r} looks like a secret (contains {word!r}); secrets reach the kernel "
        "through the environment or <workspace>/secrets/, never as parameters"
    )


@pytest.mark.parametrize(
    "name",
    ["key_label", "public_key", "spinner", "pinned_version", "private", "key", "sharepoint", "opinion", "key_private"],
)
def test_ordinary_names_are_allowed(name: str) -> None:
    check_parameter_names([name])


def test_params_file_must_be_a_mapping_without_duplicates(tmp_path: Path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text("workspace: ws\ncount: 3\nwhen: 2026-03-01\nlabels: [a, b]\n")
    assert load_params_file(good) == {"workspace": "ws", "count": 3, "when": "2026-03-01", "labels": ["a", "b"]}
    for text, match in [
        ("- a\n- b\n", "must map parameter names to values"),
        ("1: one\n", "must map parameter names to values"),
        ("count: 1\ncount: 2\n", "duplicate key 'count' at line 2"),
        ("count: [\n", "not valid YAML"),
    ]:
        good.write_text(text)
        with pytest.raises(InputError, match=match) as err:
            load_params_file(good)
        assert str(good) in err.value.message
    with pytest.raises(InputError, match="no such parameters file"):
        load_params_file(tmp_path / "missing.yaml")


def test_cli_params_are_typed_like_yaml_scalars() -> None:
    pairs = [
        ("t", "true"),
        ("f", "False"),
        ("n", "null"),
        ("pm_none", "None"),
        ("i", "42"),
        ("neg", "-7"),
        ("zero_led", "010"),
        ("x", "2.5"),
        ("e", "1e3"),
        ("s", "hello world"),
        ("yes_word", "yes"),
        ("clock", "1:30"),
        ("day", "2026-03-01"),
        ("seq", "[1, 2]"),
        ("map", "{a: 1}"),
        ("empty", ""),
    ]
    assert parse_cli_params(pairs) == {
        "t": True,
        "f": False,
        "n": None,
        "pm_none": None,
        "i": 42,
        "neg": -7,
        "zero_led": 10,
        "x": 2.5,
        "e": 1000.0,
        "s": "hello world",
        "yes_word": "yes",
        "clock": "1:30",
        "day": "2026-03-01",
        "seq": "[1, 2]",
        "map": "{a: 1}",
        "empty": "",
    }
    assert parse_cli_params([["count", "3"]]) == {"count": 3}  # argparse nargs=2 gives lists


def test_a_cli_param_given_twice_is_refused_without_its_values() -> None:
    with pytest.raises(InputError) as err:
        parse_cli_params([("label", "first-value"), ("label", "second-value")])
    assert err.value.message == "parameter 'label' given twice with -p"


def test_notebook_parameters_come_from_the_tagged_cell(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", WRITE)
    assert list(notebook_parameters(nb)) == ["workspace", "rehearsal", "count", "out"]
    assert notebook_parameters(nb)["count"]["default"] == "1"
    with pytest.raises(InputError, match="no cell tagged 'parameters'"):
        notebook_parameters(make_notebook(tmp_path / "b.ipynb", WRITE, parameters=None))
    with pytest.raises(InputError, match="not a notebook"):
        notebook_parameters(tmp_path / "a.py")
    with pytest.raises(InputError, match="no such notebook"):
        notebook_parameters(tmp_path / "missing.ipynb")


def test_unknown_or_secret_parameters_are_refused_before_any_run(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", WRITE)
    reports = tmp_path / "reports"
    with pytest.raises(InputError) as err:
        run_notebook(nb, {"cuont": "value-not-shown", "workspace": "w"}, reports_dir=reports, now=NOW)
    assert err.value.message == "a.ipynb declares no parameter cuont (it declares: workspace, rehearsal, count, out)"
    with pytest.raises(InputError, match="'hsm.user_pin' looks like a secret"):
        run_notebook(nb, {"hsm": {"user_pin": "1234"}}, reports_dir=reports, now=NOW)
    plain = make_notebook(tmp_path / "plain.ipynb", WRITE, parameters='out = "o.json"')
    with pytest.raises(InputError, match="plain.ipynb cannot be rehearsed"):
        run_notebook(plain, {}, reports_dir=reports, rehearsal=True, now=NOW)
    assert not reports.exists()


def _output_text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.slow
def test_a_run_records_parameters_and_keeps_the_executed_notebook(tmp_path: Path) -> None:
    (tmp_path / "nbs").mkdir()
    nb = make_notebook(tmp_path / "nbs" / "keygen.ipynb", WRITE)
    result = run_notebook(nb, {"count": 3, "out": "result.json"}, reports_dir=Path("reports"), now=NOW)
    assert result.run_dir == Path("reports/runs/20260301T093005.123456Z-keygen")
    assert result.executed == result.run_dir / "keygen.ipynb"
    assert yaml.safe_load(result.parameters_file.read_text()) == {"count": 3, "out": "result.json"}
    # The kernel ran in the caller's directory (relative parameters mean what they said there);
    # the injected values won over the defaults.
    assert not (tmp_path / "nbs" / "result.json").exists()
    assert json.loads((tmp_path / "result.json").read_text()) == {
        "workspace": "x",
        "rehearsal": False,
        "count": 3,
    }
    executed = nbformat.read(str(result.executed), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "count = 3" in injected[0].source
    assert executed.cells.index(injected[0]) == 1  # right after the tagged cell
    assert "wrote result.json" in _output_text(executed)
    with pytest.raises(CeremonyError, match="run directory already exists"):
        run_notebook(nb, {}, reports_dir=Path("reports"), now=NOW)


@pytest.mark.slow
def test_a_rehearsal_sets_the_parameter_and_names_the_run(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "keygen.ipynb", WRITE)
    params: dict[str, Any] = {"out": "r.json"}
    result = run_notebook(nb, params, reports_dir=tmp_path / "reports", rehearsal=True, now=NOW)
    assert result.run_dir.name == "20260301T093005.123456Z-keygen-rehearsal"
    assert json.loads((tmp_path / "r.json").read_text())["rehearsal"] is True
    assert yaml.safe_load(result.parameters_file.read_text())["rehearsal"] is True
    assert params == {"out": "r.json"}  # the caller's dict is left alone


@pytest.mark.slow
def test_a_failing_cell_is_one_line_exit_1_and_the_notebook_is_kept(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('count out of range\\nsecond line')")
    with pytest.raises(NotebookError) as err:
        run_notebook(nb, {"count": 9}, reports_dir=tmp_path / "reports", now=NOW)
    executed = tmp_path / "reports/runs/20260301T093005.123456Z-bad/bad.ipynb"
    assert err.value.message == (
        f"bad.ipynb: cell 4 failed: ValueError: count out of range; executed notebook kept at {executed}"
    )
    assert err.value.exit_code == 1
    assert "\n" not in err.value.message
    assert executed.is_file() and (executed.parent / "parameters.yaml").is_file()


@pytest.mark.slow
def test_a_ceremony_refusal_in_a_cell_exits_2(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "refuse.ipynb", "from ceremony.errors import InputError\nraise InputError('no such CA: issuing')"
    )
    # No parameters given: papermill injects no cell, so the raising cell is the second.
    with pytest.raises(NotebookError, match="cell 2 failed: InputError: no such CA: issuing") as err:
        run_notebook(nb, {}, reports_dir=tmp_path / "reports", now=NOW)
    assert err.value.exit_code == 2


@pytest.mark.slow
def test_nbclient_and_papermill_give_the_same_result(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "same.ipynb", WRITE)
    params: dict[str, Any] = {"workspace": "ws", "count": 2, "rehearsal": True}
    run_notebook(nb, params | {"out": "pm.json"}, reports_dir=tmp_path / "reports", now=NOW)
    out = execute_with_nbclient(nb, params | {"out": "nbc.json"}, tmp_path / "nbc.ipynb", cwd=tmp_path)
    assert json.loads((tmp_path / "pm.json").read_text()) == json.loads((tmp_path / "nbc.json").read_text())
    assert json.loads((tmp_path / "nbc.json").read_text()) == {"workspace": "ws", "rehearsal": True, "count": 2}
    assert "wrote nbc.json" in _output_text(nbformat.read(str(out), as_version=4))


def test_the_run_copy_has_its_parameters_injected_and_the_template_is_only_read(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "attended.ipynb", WRITE)
    before = nb.read_bytes()
    prepared = prepare_copy(nb, {"count": 4}, reports_dir=tmp_path / "reports", now=NOW, workspace=tmp_path / "ws")
    assert nb.read_bytes() == before
    assert prepared.copy == tmp_path / "reports/runs/20260301T093005.123456Z-attended/attended.ipynb"
    # The same record as a papermill run, the workspace included although the caller gave it as an option.
    recorded = yaml.safe_load(prepared.parameters_file.read_text())
    assert recorded == {"count": 4, "workspace": str((tmp_path / "ws").resolve())}
    copy = nbformat.read(str(prepared.copy), as_version=4)
    (injected,) = [c for c in copy.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "count = 4" in injected.source and f'workspace = "{(tmp_path / "ws").resolve()}"' in injected.source
    assert not any(c.get("outputs") for c in copy.cells if c.cell_type == "code")  # nothing executed
    with pytest.raises(InputError, match="declares no parameter user"):
        prepare_copy(nb, {"user": "x"}, reports_dir=tmp_path / "other", now=NOW)
    assert not (tmp_path / "other").exists()


def test_a_workspace_given_by_the_caller_does_not_override_the_parameter(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "n.ipynb", WRITE)
    prepared = prepare_copy(nb, {"workspace": "/named"}, reports_dir=tmp_path / "r", now=NOW, workspace=tmp_path)
    assert yaml.safe_load(prepared.parameters_file.read_text()) == {"workspace": "/named"}
    plain = make_notebook(tmp_path / "plain.ipynb", "x = 1", parameters="count = 1")
    prepared = prepare_copy(plain, {}, reports_dir=tmp_path / "r2", now=NOW, workspace=tmp_path)
    assert yaml.safe_load(prepared.parameters_file.read_text()) == {}  # declares no workspace: none injected


@pytest.mark.slow
def test_a_finished_run_shuts_its_kernel_down_without_an_interrupt(tmp_path: Path) -> None:
    """jupyter_client sends SIGINT to the kernel's process group before each shutdown; a kernel still in a
    handler then logs "KeyboardInterrupt caught in kernel." on a successful run. A process the last cell leaves
    in the kernel's group records any SIGINT it gets: none reaches it."""
    import os
    import signal
    import time

    marker, pid = tmp_path / "sigint", tmp_path / "pid"
    listener = (
        "import os, signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGINT, lambda *_: pathlib.Path({str(marker)!r}).write_text('interrupted'))\n"
        f"pathlib.Path({str(pid)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(30)\n"
    )
    cell = (
        "import subprocess, sys, time, pathlib\n"
        f"subprocess.Popen([sys.executable, '-c', {listener!r}])\n"
        f"while not pathlib.Path({str(pid)!r}).exists(): time.sleep(0.05)"
    )
    nb = make_notebook(tmp_path / "listen.ipynb", cell, parameters="x = 1")
    try:
        run_notebook(nb, {}, reports_dir=tmp_path / "reports", now=NOW, progress=False)
        time.sleep(0.5)
        assert not marker.exists()
    finally:
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGKILL)
