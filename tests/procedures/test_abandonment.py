"""Abandoning a failed or interrupted ceremony, on a real SoftHSM2 token: what it made is destroyed, its transcript
sealed as abandoned, a new ceremony file runs clean, and the checks show a deviation, not an orphan (issue K)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ceremony import procedures
from ceremony.compliance.assessment import run_control
from ceremony.compliance.sources import Evidence
from ceremony.errors import InputError, StateError
from ceremony.keys.pkcs11 import object_labels
from ceremony.model.catalogue import load_catalogue
from ceremony.model.people import load_register
from ceremony.procedures.abandonment import abandon
from ceremony.procedures.consoles import Unattended
from ceremony.record.transcript import read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, approve, live_workspace, run, variant
from tests.support.processes import ChildFailed, in_child

TOKEN = "s1sp-ca-token"
CATALOGUE = {c.id: c for c in load_catalogue().controls}


def _abandon(root: Path, ceremony_id: str, **kw: Any) -> Any:
    ws = Workspace.open(root)
    try:
        return abandon(
            ws,
            ceremony_id,
            witnesses=kw.pop("witnesses", ["wendy", "victor"]),
            reason=kw.pop("reason", None),
            console=Unattended(ws),
            register=load_register(root / "people.yaml"),
        )
    finally:
        ws.close()


def _public_labels(root: Path) -> set[str]:
    ws = Workspace.open(root)
    try:
        module = ws.config.key_store.module
        assert module is not None
        return object_labels(module, TOKEN, ws.softhsm_conf)
    finally:
        ws.close()


def _assess(root: Path, control: str) -> list[tuple[str, str, str]]:
    ws = Workspace.open(root, assessing=True)
    try:
        return [(f.outcome, f.code, f.message) for f in run_control(CATALOGUE[control], Evidence(ws))]
    finally:
        ws.close()


def _crash_after(step: str, path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the ceremony in a process that dies (SIGKILL, as a power cut) right after ``step``."""
    monkeypatch.setenv("CEREMONY_CRASH_AT", f"step:{step}")
    with pytest.raises(ChildFailed, match="died without an answer"):
        in_child(procedures.run, path, root)
    monkeypatch.delenv("CEREMONY_CRASH_AT")


@pytest.mark.hsm
def test_a_root_ceremony_stopped_after_its_key_was_generated_is_abandoned_and_a_new_file_runs_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run(ws, CEREMONIES / "token-init.yaml")
    approve(ws, CEREMONIES / "root-ca.yaml")
    _crash_after("generate-key", CEREMONIES / "root-ca.yaml", ws, monkeypatch)
    transcript = ws / "transcripts" / "root-ca-2026-12.jsonl"
    assert "ca-s1sp-root" in _public_labels(ws)  # the key the dead run left on the token
    assert (ws / "locks" / f"token-{TOKEN}.lock").exists()  # and its lock, whose process is gone
    # Before the fix: the same id is refused for ever, a new id finds the label taken, and KEY-03 fails for ever.
    retry = variant(tmp_path / "files", "root-ca.yaml", {"ceremony_id": "root-ca-2026-12-b"})
    approve(ws, retry)
    with pytest.raises(StateError, match=r"already exists; .*\(.*`ceremony abandon root-ca-2026-12 --witness P1"):
        procedures.run(CEREMONIES / "root-ca.yaml", ws)
    with pytest.raises(StateError) as refused:
        procedures.run(retry, ws)
    assert refused.value.message == (
        f"{retry}: key.label: token {TOKEN!r} already holds a key labelled 'ca-s1sp-root'; ceremony root-ca-2026-12 "
        "generated it and stopped unsealed: abandon it (`ceremony abandon root-ca-2026-12 --witness P1 --witness "
        "P2`), which destroys the key"
    )
    assert not (ws / "transcripts" / "root-ca-2026-12-b.jsonl").exists()

    done = _abandon(ws, "root-ca-2026-12", reason="the run was cut off after key generation")

    assert [(d["key_label"], d["gone"], d["note"]) for d in done.destroyed] == [("ca-s1sp-root", True, "destroyed")]
    assert "ca-s1sp-root" not in _public_labels(ws)
    assert not (ws / "locks" / f"token-{TOKEN}.lock").exists()
    entries = read_entries(transcript)
    abandoned, seal = entries[-2], entries[-1]
    assert abandoned["event"] == "abandon" and abandoned["reason"] == "the run was cut off after key generation"
    assert abandoned["failure"] == "interrupted after step key.generate"
    assert abandoned["witnesses"] == ["wendy", "victor"]
    assert abandoned["confirmed"] == {p: "named with --witness (unattended)" for p in ("wendy", "victor")}
    assert (seal["event"], seal["abandoned"], seal["key_label"]) == ("seal", True, "ceremony-seal")
    report = verify_transcript(transcript)
    assert report.ok and "sealed as ABANDONED (the run was cut off after key generation)" in report.message
    journal = Workspace.open(ws)
    try:
        (entry,) = [e for e in journal.journal.entries() if e["event"] == "ceremony.abandon"]
        assert entry["witnesses"] == ["wendy", "victor"] and entry["ceremony_id"] == "root-ca-2026-12"
    finally:
        journal.close()

    outcome = procedures.run(retry, ws)  # the corrected file, under a new id, runs clean: same label, new key
    assert verify_transcript(outcome.transcript).ok
    assert "ca-s1sp-root" in _public_labels(ws)
    key_03 = _assess(ws, "KEY-03")
    assert [(o, c) for o, c, _ in key_03] == [("pass", "pass")], key_03
    (finding,) = _assess(ws, "CER-11")
    assert finding[:2] == ("fail", "abandoned")
    assert finding[2] == (
        "root-ca ceremony root-ca-2026-12 abandoned on 2026-12-01: the run was cut off after key generation; "
        "witnessed by wendy, victor (key ca-s1sp-root destroyed on s1sp-ca-token)"
    )
    with pytest.raises(InputError, match="ceremony root-ca-2026-12 is sealed as abandoned"):
        _abandon(ws, "root-ca-2026-12")


class _CutOff(Unattended):
    """The first custodian's share read-back is where the power goes (an attended run interrupted)."""

    def reenter_share(self, custodian: str, card: Path) -> str:
        raise KeyboardInterrupt


def _interrupted_token_init(root: Path) -> None:
    procedures.run(CEREMONIES / "token-init.yaml", root, console=_CutOff(Workspace.open(root)))


@pytest.mark.hsm
def test_a_token_init_interrupted_at_share_read_back_is_abandoned_its_token_deleted_and_a_new_one_runs(
    tmp_path: Path,
) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    approve(ws, CEREMONIES / "token-init.yaml")
    with pytest.raises(KeyboardInterrupt):
        in_child(_interrupted_token_init, ws)
    assert sorted(p.name for p in (ws / "share-cards").iterdir())  # the cards it had written
    retry = variant(tmp_path / "files", "token-init.yaml", {"ceremony_id": "token-init-2026-12-b"})
    approve(ws, retry)
    with pytest.raises(StateError) as refused:
        procedures.run(retry, ws)
    assert refused.value.message == (
        f"{retry}: token.label: token {TOKEN!r} already exists in {ws.resolve()}; a token is initialised once (an "
        "interrupted token-init is abandoned, and its token deleted, with `ceremony abandon token-init-2026-12 "
        "--witness P1 --witness P2`)"
    )
    assert not (ws / "transcripts" / "token-init-2026-12-b.jsonl").exists()  # refused before anything is written

    done = _abandon(ws, "token-init-2026-12", witnesses=["wendy", "alice"])

    assert done.tokens_deleted == [TOKEN] and done.destroyed == []
    assert done.failure == "interrupted before its first step was recorded"
    assert [p for p in done.removed if p.startswith("share-cards/")] and not list((ws / "share-cards").iterdir())
    report = verify_transcript(ws / "transcripts" / "token-init-2026-12.jsonl")
    assert report.ok and "sealed as ABANDONED" in report.message
    assert read_entries(ws / "transcripts" / "token-init-2026-12.jsonl")[-1]["key_label"] == "one-time"
    outcome = in_child(procedures.run, retry, ws)  # a fresh process: the library sees the token directory anew
    assert verify_transcript(outcome.transcript).ok


def test_an_abandonment_needs_two_registered_witnesses_and_an_unsealed_transcript(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run(ws, CEREMONIES / "token-init.yaml")
    with pytest.raises(InputError, match=r"--witness: an abandonment is confirmed by 2 witnesses \(got 1\)"):
        _abandon(ws, "token-init-2026-12", witnesses=["wendy"])
    with pytest.raises(InputError, match="--witness: wendy given twice; 2 different people confirm"):
        _abandon(ws, "token-init-2026-12", witnesses=["wendy", "wendy"])
    with pytest.raises(InputError, match="--witness: 'mallory' is not in the participant register"):
        _abandon(ws, "token-init-2026-12", witnesses=["wendy", "mallory"])
    with pytest.raises(InputError, match="no transcript of ceremony root-ca-2026-12 in"):
        _abandon(ws, "root-ca-2026-12")
    with pytest.raises(InputError, match=r"'\.\./x' is not a ceremony id"):
        _abandon(ws, "../x")
    with pytest.raises(InputError, match=r"ceremony token-init-2026-12 is sealed \(it finished\)"):
        _abandon(ws, "token-init-2026-12")
