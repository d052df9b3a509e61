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


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_open_prepare_only_writes_the_run_copy_and_leaves_notebooks_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import nbformat
    import yaml

    from tests.support.ceremony_files import live_workspace

    ws = live_workspace(tmp_path / "ws", "software")
    before = _tree(NOTEBOOKS)
    ceremony_file = tmp_path / "root-ca.yaml"
    ceremony_file.write_text((NOTEBOOKS.parent / "data" / "ceremonies" / "root-ca.yaml").read_text())
    monkeypatch.chdir(tmp_path)  # a relative path names the file here, though the kernel runs in the run copy's folder
    notebook = NOTEBOOKS / "10-root-ca-ceremony.ipynb"
    args = ["--workspace", str(ws), "open", str(notebook), "--prepare-only", "--json", "-p", "ceremony_file"]
    assert main([*args, "root-ca.yaml"]) == 0
    out = json.loads(capsys.readouterr().out)
    run_dir, copy = Path(out["run_dir"]), Path(out["notebook"])
    assert set(out) == {"run_dir", "notebook"} and run_dir.is_absolute() and copy.is_absolute()
    assert run_dir.parent == ws.resolve() / "reports" / "runs" and run_dir.name.endswith("Z-10-root-ca-ceremony")
    assert copy == run_dir / "10-root-ca-ceremony.ipynb"
    recorded = {"ceremony_file": str(ceremony_file), "workspace": str(ws.resolve())}
    assert yaml.safe_load((run_dir / "parameters.yaml").read_text()) == recorded
    (injected,) = [c for c in nbformat.read(str(copy), as_version=4).cells
                   if "injected-parameters" in c.metadata.get("tags", [])]  # fmt: skip
    assert (
        f'ceremony_file = "{ceremony_file}"' in injected.source and f'workspace = "{ws.resolve()}"' in injected.source
    )
    assert _tree(NOTEBOOKS) == before  # byte-identical, nothing added (no .ipynb_checkpoints)
    assert not (tmp_path / "reports").exists()


def test_open_and_run_refuse_what_names_no_workspace_or_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.ceremony_files import live_workspace

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CEREMONY_WORKSPACE", raising=False)
    notebook = str(NOTEBOOKS / "70-inventory-explorer.ipynb")
    assert main(["open", notebook, "--prepare-only"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ceremony: {tmp_path / 'workspace'} is not a workspace (no workspace.yaml); run `ceremony init`, or name one "
        "with --workspace\n"
    )
    assert not (tmp_path / "workspace").exists()  # a later `ceremony init` there still finds it empty
    ws = live_workspace(tmp_path / "ws", "software")
    assert main(["--workspace", str(ws), "run", notebook, "-p", "workspace", str(tmp_path / "other")]) == 2
    assert "parameter workspace (" in capsys.readouterr().err
    assert not (ws / "reports").exists()


def test_open_starts_jupyterlab_on_the_run_copy_alone(tmp_path: Path) -> None:
    """The server ``ceremony open`` starts: 127.0.0.1, the run directory as its root, kernels over Unix sockets."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from tests.support.ceremony_files import live_workspace

    pytest.importorskip("jupyterlab")
    ws = live_workspace(tmp_path / "ws", "software")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    cli = [sys.executable, "-c", "import sys; from ceremony.cli.main import main; sys.exit(main())"]
    command = [*cli, "--workspace", str(ws), "open", str(NOTEBOOKS / "70-inventory-explorer.ipynb"),
               "--no-browser", "--port", str(port)]  # fmt: skip
    lab = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.25)
        else:
            pytest.fail("JupyterLab did not listen")
        lab.send_signal(signal.SIGTERM)
        out, _ = lab.communicate(timeout=30)
    finally:
        if lab.poll() is None:
            lab.kill()
    (run_dir,) = (ws / "reports" / "runs").iterdir()
    assert f"run copy {run_dir.resolve() / '70-inventory-explorer.ipynb'}" in out
    assert f"Serving notebooks from local directory: {run_dir.resolve()}" in out
    assert f"http://127.0.0.1:{port}/lab" in out
