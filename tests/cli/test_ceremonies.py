"""`ceremony approve | run | transcript`: usage errors of the ceremony commands, one line, exit 2; a transcript's
timestamp as `transcript verify` reports it, and `transcript timestamp` stamping what a TSA out of reach left."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ceremony.cli.main import main
from tests.support.ceremony_files import write_register
from tests.support.tsa import LocalTsa, make_tsa, name_tsa, seal_transcript

NOT_YET = "not yet timestamped (the next online step stamps it: `ceremony transcript timestamp`)"


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


def _tsa_workspace(tmp_path: Path, tsa: LocalTsa, timeout: float = 2.0) -> Path:
    """A test workspace (software store) naming ``tsa``, with a sealed transcript; returns the transcript."""
    from ceremony.record.workspace import init_workspace

    init_workspace(tmp_path / "ws", key_store="software", purpose="test").close()
    write_register(tmp_path / "ws")
    name_tsa(tmp_path / "ws", tsa, timeout=timeout)
    return seal_transcript(tmp_path / "ws" / "transcripts" / "token-init-2026-12.jsonl")


def test_transcript_verify_reports_the_seals_timestamp_and_fails_for_a_token_over_other_data(
    tmp_path: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = _tsa_workspace(tmp_path, tsa)
    ws = ["--workspace", str(tmp_path / "ws")]
    assert main([*ws, "transcript", "verify", str(transcript)]) == 0
    assert NOT_YET in capsys.readouterr().out.splitlines()
    assert main([*ws, "transcript", "timestamp"]) == 0
    stamped = capsys.readouterr().out
    assert stamped.startswith("the seal of transcripts/token-init-2026-12.jsonl: timestamped by Test TSA at ")
    assert main([*ws, "transcript", "timestamp"]) == 0
    assert capsys.readouterr().out == "nothing to timestamp: every sealed transcript and checkpoint has its token\n"
    assert main([*ws, "transcript", "verify", str(transcript)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("intact and sealed, 3 entries; read aloud: " + lines[0].rsplit(": ", 1)[1])
    # how long after the seal by the workspace's clock (pinned by the suite) the TSA's (the machine's) genTime is
    assert re.fullmatch(r"timestamped by Test TSA at \S+Z \((\d+ s after|at|\d+ s before) the seal.*\)", lines[1])
    # a token over other data in its place: the TSA's, genuine, over 32 other bytes
    token = transcript.with_suffix(".seal.tsr")
    data = token.read_bytes()
    token.chmod(0o644)
    from ceremony.record.timestamps import Authority, Stamp, load_chain, request_stamp

    foreign = request_stamp(Authority(tsa.url, load_chain(tsa.tsa.chain), 5.0), bytes.fromhex("00" * 32))
    assert isinstance(foreign, Stamp)
    token.write_bytes(foreign.token)
    assert main([*ws, "transcript", "verify", str(transcript)]) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        "token-init-2026-12.seal.tsr: it is over other data (its message imprint is not that of what it stamps)"
    )
    token.write_bytes(data)
    assert main([*ws, "transcript", "verify", str(transcript), "--tsa-chain", str(make_tsa(tmp_path / "x").chain)]) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        "token-init-2026-12.seal.tsr: its signature does not verify under the TSA chain"
    )


def test_transcript_timestamp_says_what_is_pending_while_the_tsa_is_out_of_reach(
    tmp_path: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = _tsa_workspace(tmp_path, tsa, timeout=0.5)
    ws = ["--workspace", str(tmp_path / "ws")]
    tsa.behaviour = "garbage"
    assert main([*ws, "transcript", "timestamp", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "stamped": [],
        "pending": ["the seal of transcripts/token-init-2026-12.jsonl"],
        "deferred": f"the TSA at {tsa.url} answered, but not with a token that verifies: not an RFC 3161 timestamp "
        "response (a DER TimeStampResp)",
        "problems": [],
    }
    assert not transcript.with_suffix(".seal.tsr").exists()
    tsa.behaviour = "answer"
    assert main([*ws, "transcript", "timestamp", "--json"]) == 0
    (stamped,) = json.loads(capsys.readouterr().out)["stamped"]
    assert (stamped["subject"], stamped["stamped"], stamped["tsa"]) == (
        "transcript seal",
        "transcripts/token-init-2026-12.jsonl",
        "Test TSA",
    )
    assert transcript.with_suffix(".seal.tsr").is_file()


def test_transcript_timestamp_in_a_workspace_that_names_no_tsa_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ceremony.record.workspace import init_workspace

    init_workspace(tmp_path / "ws", key_store="software", purpose="test").close()
    assert main(["--workspace", str(tmp_path / "ws"), "transcript", "timestamp"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ceremony: {tmp_path / 'ws' / 'workspace.yaml'} names no time-stamping authority (timestamping: url, "
        "certificate)\n"
    )
