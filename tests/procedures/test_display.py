"""Ceremony errors in a notebook are one line naming the step and whose share; read-aloud words are shown.

The handler is tried in real kernels: papermill running the shipped root-ca notebook unattended (the cell
must still fail, with the error's name and message, so that `ceremony run` stops and reports it), and a
kernel whose client answers input() as JupyterLab does (an attended token-init, then a root-ca activation
where a custodian types the wrong share).
"""

from __future__ import annotations

import os
import queue
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from ceremony.errors import StateError
from ceremony.keys.custody import CustodyError, read_share_card
from ceremony.procedures import display
from ceremony.record.transcript import read_entries
from ceremony.reporting.notebooks import NotebookError, ipc_kernel_manager, notebooks_dir, run_notebook
from tests.support.ceremony_files import CEREMONIES, approve, live_workspace, run

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- the one line -----------------------------------------------------------------------------
def test_an_error_of_a_step_names_the_step_and_keeps_its_message() -> None:
    error = CustodyError("the share typed by carol does not belong to the same split as alice's", custodian="carol")
    display.mark_step(error, "activate")
    assert display.error_line(error) == (
        "step 'activate': the share typed by carol does not belong to the same split as alice's"
    )
    assert error.message == "the share typed by carol does not belong to the same split as alice's"
    assert display.error_line(StateError("cannot seal: steps not run: wrap", hint="run them first")) == (
        "cannot seal: steps not run: wrap (run them first)"
    )


def test_outside_a_kernel_nothing_is_installed() -> None:
    assert display.install_error_display() is False


def test_the_read_aloud_words_are_found_in_a_steps_record() -> None:
    details = {
        "sha256": "ab" * 4,
        "words": "ranked become cylinder",
        "s1sp-ca-token.user-pin": {"share_card_bags": {"carol": "TEB-1", "dave": None}, "shares": {"carol": "f1"}},
        "token_bag": "TEB-0",
        "keys": {"zmk": {"kcv": "A1B2C3", "components": {"carol": {"bag_sealed": "TEB-7", "kcv": "000001"}}}},
        "attributes": {"kcv": "never read"},
    }
    assert display.read_aloud_lines(details) == [
        "fingerprint words: ranked become cylinder",
        "SHA-256: AB:AB:AB:AB",
        "share-card bags of s1sp-ca-token.user-pin: carol TEB-1, dave (no bag recorded)",
        "token bag: TEB-0",
        "check value (KCV) of zmk: A1B2C3",
        "component bags sealed of zmk: carol TEB-7",
    ]


# --- papermill: unattended, the cell still fails ----------------------------------------------
def _one_error_output(nb: Any) -> tuple[dict[str, Any], str]:
    errors = [(cell, o) for cell in nb.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1, errors
    cell, output = errors[0]
    assert not [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
    return output, cell.source


@pytest.mark.hsm
@pytest.mark.slow
def test_papermill_stops_at_a_wrong_share_and_the_notebook_shows_one_line(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run(ws, CEREMONIES / "token-init.yaml")  # unattended: carol's and dave's PIN shares rest in secrets/
    approve(ws, CEREMONIES / "root-ca.yaml")
    # carol's deposited share is swapped for her SO-PIN share: a real share, of another split.
    so_card = ws / "share-cards" / "token-init-2026-12.s1sp-ca-token.so-pin.carol.txt"
    deposited = ws / "secrets" / "shares" / "s1sp-ca-token.user-pin" / "carol.share"
    deposited.write_text(read_share_card(so_card) + "\n")
    with pytest.raises(NotebookError) as err:
        run_notebook(
            notebooks_dir() / "10-root-ca-ceremony.ipynb",
            {"workspace": str(ws)},
            reports_dir=tmp_path / "reports",
            cwd=tmp_path,
        )
    # `ceremony run` reports the refusal by the error's own name and message (exit 2), as before.
    assert err.value.exit_code == 2
    assert "failed: CustodyError: the share typed by carol is not the share carol was handed;" in err.value.message
    executed = next((tmp_path / "reports" / "runs").glob("*/10-root-ca-ceremony.ipynb"))
    output, source = _one_error_output(nbformat.read(str(executed), as_version=4))
    assert source == '_ = root.step("activate")'
    assert output.ename == "CustodyError"
    assert output.evalue == "the share typed by carol is not the share carol was handed"
    assert [ANSI.sub("", line) for line in output.traceback] == [
        "step 'activate': the share typed by carol is not the share carol was handed"
    ]
    failed = [e for e in read_entries(ws / "transcripts" / "root-ca-2026-12.jsonl") if e["event"] == "step.failed"]
    assert [(e["step"], e["error"]) for e in failed] == [("activate", "CustodyError")]


# --- a kernel whose client answers input(), as JupyterLab's does --------------------------------
@dataclass
class Cell:
    status: str
    out: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[tuple[str, bool]] = field(default_factory=list)


class Lab:
    """A kernel driven as JupyterLab drives it: cells executed with stdin allowed, prompts answered."""

    def __init__(self, cwd: Path) -> None:
        self.km = ipc_kernel_manager()(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=dict(os.environ))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, answer: Callable[[str, bool], str] | None = None, timeout: float = 120) -> Cell:
        msg_id = self.kc.execute(code, allow_stdin=True)
        cell = Cell(status="", out="")
        idle = False
        while not idle:
            try:
                request = self.kc.get_stdin_msg(timeout=0.02)
            except queue.Empty:
                pass
            else:
                prompt, hidden = request["content"]["prompt"], bool(request["content"]["password"])
                cell.prompts.append((prompt, hidden))
                assert answer is not None, f"unexpected prompt {prompt!r}"
                self.kc.input(answer(prompt, hidden))
            try:
                msg = self.kc.get_iopub_msg(timeout=0.02)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                cell.out += content["text"]
            elif kind == "error":
                cell.errors.append(content)
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                cell.status = reply["content"]["status"]
                return cell

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    kernel = Lab(tmp_path)
    yield kernel
    kernel.close()


class Room:
    """The custodians at the keyboard: each types back the card they hold, in the order handed out."""

    def __init__(self, ws: Path, wrong_first: dict[str, str] | None = None) -> None:
        self.ws = ws
        self.typed: dict[str, int] = {}
        self.wrong_first = dict(wrong_first or {})  # custodian -> card they type by mistake first

    def card(self, name: str) -> str:
        return read_share_card(self.ws / "share-cards" / name)

    def answer(self, prompt: str, hidden: bool) -> str:
        if "confirm by typing your person id" in prompt:
            return "alice"
        who = prompt.strip().split(",")[0]
        assert hidden, prompt  # share words never go through an echoing prompt
        if who in self.wrong_first:
            return self.card(self.wrong_first.pop(who))
        n = self.typed.get(who, 0)
        self.typed[who] = n + 1
        split = ("user-pin", "so-pin")[n % 2]
        return self.card(f"token-init-2026-12.s1sp-ca-token.{split}.{who}.txt")


@pytest.mark.hsm
@pytest.mark.slow
def test_an_attended_kernel_retries_a_wrong_share_shows_a_finished_step_again_and_errors_in_one_line(
    tmp_path: Path, lab: Lab
) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    approve(ws, CEREMONIES / "token-init.yaml")
    transcript = ws / "transcripts" / "token-init-2026-12.jsonl"
    opened = lab.run(
        f"from ceremony import procedures\ntoken = procedures.begin(r'{CEREMONIES / 'token-init.yaml'}', r'{ws}')"
    )
    assert opened.status == "ok", opened
    # carol first types back dave's card instead of her own: she is told, and types it again.
    room = Room(ws, wrong_first={"carol": "token-init-2026-12.s1sp-ca-token.user-pin.dave.txt"})
    first = lab.run('_ = token.step("initialise")', room.answer)
    assert first.status == "ok", first
    assert (
        "step 'initialise': carol's share as typed back does not match its card \u2014 carol, type your share "
        "back in again (try 2 of 3)" in first.out
    )
    assert "read aloud: token bag: TEB-100230" in first.out
    bags = "carol TEB-100231, dave TEB-100232, erin TEB-100233"
    assert f"read aloud: share-card bags of s1sp-ca-token.so-pin: {bags}" in first.out
    before = transcript.read_bytes()
    # Shift+Enter again on the same cell: the result again, no prompt, nothing recorded or done.
    again = lab.run('_ = token.step("initialise")', room.answer)
    assert again.status == "ok" and again.prompts == [] and again.errors == []
    assert re.search(
        r"^step 'initialise' was already done at 2026-12-01 10:\d\d:\d\d UTC by alice; it is not run again", again.out
    )
    assert "read aloud: token bag: TEB-100230" in again.out
    assert transcript.read_bytes() == before
    # A ceremony error: one red line, the cell failed (JupyterLab stops a run of all cells there).
    wrong = lab.run('token.step("seal")')
    assert wrong.status == "error" and wrong.out == ""
    assert [(e["ename"], [ANSI.sub("", t) for t in e["traceback"]]) for e in wrong.errors] == [
        ("InputError", ["token-init has no step 'seal'; its script is initialise"])
    ]
    assert lab.run("outcome = token.finish()").status == "ok"
    sealed = transcript.read_bytes()
    twice = lab.run("assert token.finish() is outcome")
    assert twice.status == "ok" and "the ceremony was already sealed at 2026-12-01 " in twice.out
    assert transcript.read_bytes() == sealed

    # The root ceremony: carol types her SO-PIN share where her user-PIN share belongs, three times.
    approve(ws, CEREMONIES / "root-ca.yaml")
    assert lab.run(f"root = procedures.begin(r'{CEREMONIES / 'root-ca.yaml'}', r'{ws}')").status == "ok"
    so = room.card("token-init-2026-12.s1sp-ca-token.so-pin.carol.txt")
    user = {c: room.card(f"token-init-2026-12.s1sp-ca-token.user-pin.{c}.txt") for c in ("carol", "dave")}
    order = iter(["carol", "dave", "carol", "carol"])

    def present(prompt: str, hidden: bool) -> str:
        if not hidden:
            return next(order)
        who = prompt.strip().split(",")[0]
        return so if who == "carol" else user[who]

    failed = lab.run('_ = root.step("activate")', present)
    assert failed.status == "error"
    retry = "step 'activate': the share typed by carol is not the share carol was handed \u2014 carol, type your share"
    assert failed.out.count(retry) == 2
    assert [(e["ename"], [ANSI.sub("", t) for t in e["traceback"]]) for e in failed.errors] == [
        ("CustodyError", ["step 'activate': the share typed by carol is not the share carol was handed"])
    ]
    assert [p for p, hidden in failed.prompts if not hidden] == [
        "[s1sp-ca-token.user-pin] custodian 1 of 2, your person id: ",
        "[s1sp-ca-token.user-pin] custodian 2 of 2, your person id: ",
        "[s1sp-ca-token.user-pin] custodian 1 of 1, your person id: ",
        "[s1sp-ca-token.user-pin] custodian 1 of 1, your person id: ",
    ]
    # The ceremony is over: a re-run of the cell says so in one line, and records nothing more.
    ended = ws / "transcripts" / "root-ca-2026-12.jsonl"
    kept = ended.read_bytes()
    rerun = lab.run('_ = root.step("activate")', present)
    assert rerun.status == "error" and rerun.prompts == []
    assert [ANSI.sub("", t) for e in rerun.errors for t in e["traceback"]] == [
        "ceremony root-ca-2026-12 ended unsealed when step 'activate' failed (its transcript root-ca-2026-12.jsonl "
        "keeps the failure); nothing more runs in it: `ceremony abandon root-ca-2026-12` (two witnesses "
        "confirming) clears what it made, then run a new ceremony file"
    ]
    assert ended.read_bytes() == kept


@pytest.mark.slow
def test_a_ceremony_error_before_any_step_is_one_line_too(tmp_path: Path, lab: Lab) -> None:
    cell = lab.run(f"from ceremony import procedures\nprocedures.begin(r'{tmp_path / 'nope.yaml'}', r'{tmp_path}')")
    assert cell.status == "error" and cell.out == ""
    assert [(e["ename"], [ANSI.sub("", t) for t in e["traceback"]]) for e in cell.errors] == [
        ("ConfigError", [f"{tmp_path / 'nope.yaml'}: no such ceremony file"])
    ]
