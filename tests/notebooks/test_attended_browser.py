"""An attended token initialisation and root ceremony in JupyterLab, stepped in a real browser (Debian's Chromium).

A fresh live workspace (SoftHSM2 token, no pinned clock, no PIN anywhere) gets a run copy of notebooks 05 and 10
from ``ceremony open --prepare-only``; JupyterLab serves the run copies on 127.0.0.1 and the test, playing the
people in the room, clicks each code cell, runs it, and answers every prompt as it appears: officers type their
person ids at the gates, custodians type their share back from the card the ceremony printed (the file under
share-cards/, as the paper card would be read) and later present it to activate the token. A finished step is
run again, as an officer's stray Shift+Enter would. Then: both transcripts sealed, the saved run copies (and the
workspace, and JupyterLab's own files) free of every share and PIN, notebooks/ byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony.clock import PIN_VARIABLE
from ceremony.keys.custody import combine, pin_from_secret, read_share_card
from ceremony.record.transcript import verify_transcript
from ceremony.record.workspace import PIN_ENV, init_workspace
from tests.support import browser
from tests.support.ceremony_files import CEREMONIES, approve, write_register

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.hsm]
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
TOKEN = "s1sp-ca-token"  # noqa: S105 - a label


def _tree(directory: Path) -> dict[str, str]:
    """Every file and folder under ``directory`` (checkpoint folders included), files with their SHA-256."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(directory.rglob("*"))
    }


def _run_copy(root: Path, notebook: str, ceremony_file: Path) -> Path:
    """``ceremony open NOTEBOOK --prepare-only --json``: the run copy under <workspace>/reports/runs/."""
    done = subprocess.run(
        [sys.executable, "-m", "ceremony", "--workspace", str(root), "open", str(NOTEBOOKS / notebook),
         "--prepare-only", "--json", "-p", "ceremony_file", str(ceremony_file)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    copy = Path(out["notebook"])
    assert copy.parent == Path(out["run_dir"]) and copy.parent.parent == root / "reports" / "runs", out
    assert copy.name == notebook and copy.is_file()
    return copy


class Room:
    """The people at the ceremony, answering the console's prompts. Custodians keep what their cards said in
    memory only (as they keep the paper); the card files are read when the console asks for them typed back."""

    def __init__(self, root: Path) -> None:
        self.cards = root / "share-cards"
        #: purpose -> custodian -> share words
        self.held: dict[str, dict[str, str]] = {}
        self.presenting: tuple[str, str] | None = None
        self.prompts: list[str] = []
        #: share cards on the disk at each read-back (a live workspace holds one at a time)
        self.cards_on_disk: list[int] = []

    def __call__(self, prompt: str, password: bool) -> str:
        self.prompts.append(prompt)
        if gate := re.search(r"confirm by typing your person id \(([^)]*)\):\s*$", prompt):
            assert not password, prompt
            return gate.group(1).split(", ")[0]
        if turn := re.search(r"\[([^\]]+)\] custodian (\d+) of (\d+), your person id:\s*$", prompt):
            assert not password, prompt
            purpose, k = turn.group(1), int(turn.group(2))
            who = sorted(self.held[purpose])[k - 1]
            self.presenting = (purpose, who)
            return who
        if back := re.search(r"(\w+), type your share back in from your card \(not shown\):\s*$", prompt):
            assert password, f"a share typed in a visible box: {prompt!r}"
            cards = sorted(self.cards.glob("*.txt"))
            self.cards_on_disk.append(len(cards))
            (card,) = [c for c in cards if c.name.endswith(f".{back.group(1)}.txt")]
            purpose = card.read_text(encoding="utf-8").split("SHARE CARD - ", 1)[1].split(" - ceremony ", 1)[0]
            words = read_share_card(card)
            self.held.setdefault(purpose, {})[back.group(1)] = words
            return words
        if share := re.search(r"(\w+), type your share words \(not shown\):\s*$", prompt):
            assert password, f"a share typed in a visible box: {prompt!r}"
            assert self.presenting is not None and self.presenting[1] == share.group(1), prompt
            return self.held[self.presenting[0]][share.group(1)]
        raise browser.BrowserTestError(f"a prompt nobody in the room expected: {prompt!r}")

    def secrets(self) -> dict[str, str]:
        """Every share (whole and every run of four words) and every PIN they rebuild, by name."""
        found: dict[str, str] = {}
        for purpose, shares in self.held.items():
            for who, words in shares.items():
                found[f"{who}'s {purpose} share"] = words
                items = words.split()
                for i in range(len(items) - 3):
                    found[f"words {i + 1}-{i + 4} of {who}'s {purpose} share"] = " ".join(items[i : i + 4])
            pin = pin_from_secret(combine(list(shares.values())[:2]))
            found[f"{purpose} (PIN)"], found[f"{purpose} (PIN, upper case)"] = pin, pin.upper()
        return found


def _nobody(prompt: str, password: bool) -> str:
    raise browser.BrowserTestError(f"a finished step asked again: {prompt!r}")


def _leaks(secrets: dict[str, str], *places: Path) -> list[str]:
    """Which secret is in which file under ``places`` (a workspace's token/ aside: SoftHSM2's own store)."""
    found = []
    for place in places:
        files = [place] if place.is_file() else sorted(p for p in place.rglob("*") if p.is_file())
        for path in files:
            if place.is_dir() and path.relative_to(place).parts[0] == "token":
                continue
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, needle in secrets.items() if needle.encode() in data]
    return found


def _step_cells(nb: browser.Notebook) -> dict[str, int]:
    """Each step's cell by the step it runs, and the other code cells by their first line."""
    cells = {}
    for index in nb.code_cells():
        source = nb.source(index)
        step = re.search(r"\.step\(\"([^\"]+)\"\)", source)
        cells[step.group(1) if step else source.splitlines()[0]] = index
    return cells


def _step(nb: browser.Notebook, room: Room, kind: str, transcript: Path, rerun: str | None) -> int:
    """Every code cell of ``nb`` in order, each prompt answered by ``room``; ``rerun``'s cell run twice.
    Returns the cell to show on the screenshot (the re-run one, or the seal)."""
    cells = _step_cells(nb)
    for index in nb.code_cells():
        nb.run(index, room)
        if nb.errors(index):
            raise nb.failure(f"{kind}: cell {index} failed: {nb.errors(index)}")
        if rerun is not None and index == cells[rerun]:
            # A stray Shift+Enter on the finished step: its recorded result, no prompt, nothing recorded.
            before = transcript.read_bytes()
            again = nb.run(index, _nobody, timeout=30, stray=True)
            if nb.errors(index):
                raise nb.failure(f"{kind}: re-running step {rerun!r} failed: {nb.errors(index)}")
            assert "already" in again.lower() and rerun in again, again
            assert transcript.read_bytes() == before, f"re-running step {rerun!r} wrote to the transcript"
    nb.save()
    return cells[rerun] if rerun is not None else nb.code_cells()[-1]


def test_an_attended_token_init_and_root_ceremony_stepped_in_jupyterlab_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (PIN_VARIABLE, PIN_ENV, "SOFTHSM2_CONF", "CEREMONY_UNATTENDED"):
        monkeypatch.delenv(name, raising=False)  # a live workspace: the system clock, no PIN at rest
    root = tmp_path / "ws"
    init_workspace(root, key_store="pkcs11", token_label=TOKEN).close()
    write_register(root)
    for kind in ("token-init", "root-ca"):
        approve(root, CEREMONIES / f"{kind}.yaml")
    templates = _tree(NOTEBOOKS)
    room = Room(root)
    shots = tmp_path / "screenshots"
    env = dict(os.environ) | {"CEREMONY_WORKSPACE": str(root)}
    ceremonies = (
        ("token-init", "05-token-init-ceremony.ipynb", None),
        ("root-ca", "10-root-ca-ceremony.ipynb", "generate-key"),
    )
    copies: dict[str, Path] = {}
    with browser.chromium_page() as page:
        for kind, notebook, rerun in ceremonies:
            copies[kind] = copy = _run_copy(root, notebook, CEREMONIES / f"{kind}.yaml")
            # As `ceremony open` does: JupyterLab on the run directory alone, kernels over Unix sockets.
            with browser.jupyterlab(copy.parent, tmp_path / f"lab-{kind}", env) as lab:
                nb = browser.Notebook(page, lab, copy, shots)
                try:
                    shown = _step(nb.open(), room, kind, root / "transcripts" / f"{kind}-2026-12.jsonl", rerun)
                except browser.BrowserTestError:
                    raise
                except Exception as exc:  # an assertion or a Playwright timeout: show the page and the log
                    raise nb.failure(f"{kind}: {type(exc).__name__}: {exc}") from exc
                nb.screenshot(kind, at=shown)
            if kind == "token-init":  # the gate, then the six cards typed back (two PINs, three custodians)
                assert len(room.prompts) == 7 and room.prompts[0].startswith("[initialise]"), room.prompts
                assert set(room.held) == {f"{TOKEN}.user-pin", f"{TOKEN}.so-pin"}
                assert all(sorted(shares) == ["carol", "dave", "erin"] for shares in room.held.values())
                assert room.cards_on_disk == [1] * 6, "a live workspace holds one share card at a time"
                assert list((root / "share-cards").iterdir()) == []
            else:  # two custodians present their user-PIN shares; the operator confirms the key generation
                asked = room.prompts[7:]
                assert sum("type your share words" in p for p in asked) == 2, asked
                assert any(p.startswith("[generate-key]") for p in asked), asked

    # Both transcripts sealed, and the seal verifies (the CLI says so too).
    for kind in copies:
        transcript = root / "transcripts" / f"{kind}-2026-12.jsonl"
        assert verify_transcript(transcript).ok, kind
        done = subprocess.run(
            [sys.executable, "-m", "ceremony", "--workspace", str(root), "transcript", "verify", str(transcript)],
            capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
        )  # fmt: skip
        assert done.returncode == 0 and "intact and sealed" in done.stdout, done.stdout + done.stderr
    assert (root / "artifacts" / "cas" / "s1sp-root.pem").is_file()

    # The saved run copies hold the officers' outputs and no share or PIN: the password boxes leave dots.
    for kind, copy in copies.items():
        saved = json.loads(copy.read_text())
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code), f"{kind}: a cell not run, or not saved"
        assert all(c["outputs"] for c in code if ".step(" in "".join(c["source"])), f"{kind}: outputs not saved"
        typed = [o for c in code for o in c["outputs"] if o.get("name") == "stdin"]
        hidden = [t for t in ("".join(o["text"]) for o in typed) if "(not shown):" in t]
        assert hidden and all(t.rstrip().endswith("\u00b7" * 8) for t in hidden), f"{kind}: {hidden}"
    secrets = room.secrets()
    assert not _leaks(secrets, *copies.values())
    assert not _leaks(secrets, root, *tmp_path.glob("lab-*"))

    # notebooks/ as it was: byte for byte, and no checkpoint folder there.
    assert _tree(NOTEBOOKS) == templates
    assert not list(NOTEBOOKS.rglob(".ipynb_checkpoints"))
