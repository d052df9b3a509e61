"""The ceremony notebooks: their shape, and real executions through papermill, nbclient and `ceremony run`."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from ceremony import procedures
from ceremony.cli.main import main
from ceremony.record.transcript import diff_transcripts, read_entries, verify_transcript
from ceremony.reporting.notebooks import check_parameter_names, execute_with_nbclient, notebook_parameters, run_notebook
from tests.support.ceremony_files import CEREMONIES, approve, live_workspace, run_examples

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CEREMONY_NOTEBOOKS = [p for p in NOTEBOOKS if "procedures.begin(" in p.read_text()]


def _calls(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """In cell order: ("begin", type) for procedures.begin(..., expect=type), ("step", id) for .step(id)."""
    calls: list[tuple[str, str]] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "begin":
                    expect = next(k.value for k in node.keywords if k.arg == "expect")
                    calls.append(("begin", expect.value))  # type: ignore[attr-defined]
                elif node.func.attr == "step":
                    calls.append(("step", node.args[0].value))  # type: ignore[attr-defined]
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_is_committed_clean_with_a_workspace_parameter(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    params = notebook_parameters(path)
    check_parameter_names(params)
    assert "workspace" in params


@pytest.mark.parametrize("path", CEREMONY_NOTEBOOKS, ids=[p.stem for p in CEREMONY_NOTEBOOKS])
def test_each_ceremony_notebook_walks_its_procedures_script_in_order(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert "rehearsal" in notebook_parameters(path)
    calls = _calls(nb)
    blocks: list[list[str]] = []
    for kind, value in calls:
        if kind == "begin":
            blocks.append([value])
        else:
            blocks[-1].append(value)
    assert blocks, "the notebook opens no ceremony"
    for kind, *steps in blocks:
        assert steps == [s for s, _ in procedures.PROCEDURES[kind].SCRIPT]


def test_every_ceremony_type_has_a_notebook() -> None:
    kinds = {
        value for path in NOTEBOOKS for kind, value in _calls(nbformat.read(path, as_version=4)) if kind == "begin"
    }
    assert kinds == set(procedures.PROCEDURES)


@pytest.mark.slow
def test_papermill_and_nbclient_give_the_same_transcript_structure(tmp_path: Path) -> None:
    transcripts = []
    for runner in ("papermill", "nbclient"):
        ws = live_workspace(tmp_path / runner, "software")
        run_examples(ws, "token-init")
        approve(ws, CEREMONIES / "root-ca.yaml")
        params = {"ceremony_file": str(CEREMONIES / "root-ca.yaml"), "workspace": str(ws)}
        notebook = next(p for p in NOTEBOOKS if p.stem == "10-root-ca-ceremony")
        if runner == "papermill":
            run_notebook(notebook, params, reports_dir=tmp_path / "reports", progress=False)
        else:
            execute_with_nbclient(notebook, params, tmp_path / "nbclient.ipynb", cwd=tmp_path)
        transcripts.append(ws / "transcripts" / "root-ca-2026-12.jsonl")
    assert all(verify_transcript(t).ok for t in transcripts)
    # On its file's date (the suite's pinned day): start, the software-store deviation, 5 steps and the seal.
    assert len(read_entries(transcripts[0])) == len(read_entries(transcripts[1])) == 8
    assert diff_transcripts(*transcripts) == []


@pytest.mark.slow
def test_ceremony_run_refuses_an_unapproved_live_run_in_one_line_and_keeps_the_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    code = main(["--workspace", str(ws), "run", "notebooks/05-token-init-ceremony.ipynb"])  # relative to the repo
    assert code == 2  # no such notebook here: the kernel never starts
    assert "no such notebook" in capsys.readouterr().err
    notebook = next(p for p in NOTEBOOKS if p.stem == "05-token-init-ceremony")
    code = main(
        ["--workspace", str(ws), "run", str(notebook), "-p", "ceremony_file", str(CEREMONIES / "token-init.yaml")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "InputError: " in err and "0 of 2 approvals" in err and "executed notebook kept at" in err
    kept = Path(err.rsplit("executed notebook kept at ", 1)[1].strip())
    assert kept.is_file() and kept.parent.parent == ws.resolve() / "reports" / "runs"  # the workspace's own
    assert list((ws / "transcripts").iterdir()) == []


def test_ceremony_run_refuses_secret_parameters_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = NOTEBOOKS[0]
    for name in ("user_pin", "kek_shares", "private_key"):
        assert main(["run", str(notebook), "-p", name, "1234"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"parameter '{name}' looks like a secret" in err and "1234" not in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_ceremony_run_rehearsal_uses_the_rehearsal_area(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    notebook = next(p for p in NOTEBOOKS if p.stem == "05-token-init-ceremony")
    code = main(["--workspace", str(ws), "run", str(notebook), "--rehearsal", "--json"])
    assert code == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert Path(out["run_dir"]).name.endswith("-05-token-init-ceremony-rehearsal")
    transcript = ws / "rehearsal" / "transcripts" / "token-init-2026-12.jsonl"
    assert verify_transcript(transcript).ok and read_entries(transcript)[0]["rehearsal"] is True
    assert list((ws / "transcripts").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("allow_stdin, console", [(True, "Attended"), (False, "Unattended")])
def test_a_kernel_whose_client_can_answer_input_runs_attended(allow_stdin: bool, console: str) -> None:
    # JupyterLab answers input() (allow_stdin); papermill and nbclient do not.
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    out: list[str] = []
    try:
        kc.execute_interactive(
            "from ceremony.procedures.consoles import kernel_console\nprint(type(kernel_console(None)).__name__)",
            allow_stdin=allow_stdin,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")),
            timeout=60,
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "".join(out).strip() == console


@pytest.mark.slow
def test_the_ca_revocation_notebook_revokes_publishes_the_arl_and_seals(tmp_path: Path) -> None:
    """papermill runs notebooks/45-ca-revocation-ceremony.ipynb on a workspace with the root and issuing CA; what
    the package wrote is asserted on: the revocation, the ARL, the affected-certificates files and the seal."""
    from ceremony.record.revocations import revocation
    from ceremony.record.workspace import Workspace

    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "issuing-ca")
    approve(ws, CEREMONIES / "ca-revocation.yaml")
    notebook = next(p for p in NOTEBOOKS if p.stem == "45-ca-revocation-ceremony")
    params = {"ceremony_file": str(CEREMONIES / "ca-revocation.yaml"), "workspace": str(ws)}
    run_notebook(notebook, params, reports_dir=tmp_path / "reports", progress=False)
    transcript = ws / "transcripts" / "ca-revocation-2026-12.jsonl"
    assert verify_transcript(transcript).ok
    steps = [e["step"] for e in read_entries(transcript) if e["event"] == "step"]
    assert steps == ["token.activate", "ca.revoke", "arl.publish", "affected.list", "incident.record"]
    opened = Workspace.open(ws)
    try:
        done = revocation(opened.inventory, "s1sp-root", opened.inventory.ca("s1sp-issuing").serial)
    finally:
        opened.close()
    assert done is not None and done.reason == "keyCompromise"
    assert (ws / "artifacts" / "crls" / "s1sp-root-1.arl").is_file()
    folder = ws / "artifacts" / "compromise" / "ca-revocation-2026-12"
    assert sorted(p.name for p in folder.iterdir()) == ["affected-certificates.csv", "recertification-devices.csv"]
