"""The ceremony base: a file's date against the workspace's clock, the pinned clock in a live workspace; steps
run again show their result, wrong shares are named and typed again, a failed step ends the ceremony; a seal is
timestamped at once by a TSA in reach, or, made offline, when the next ceremony starts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.clock import PIN_VARIABLE
from ceremony.errors import ConfigError, StateError
from ceremony.keys.custody import CustodyError, read_share_card
from ceremony.keys.pkcs11 import find_softhsm_module
from ceremony.procedures import display
from ceremony.procedures.consoles import Attended
from ceremony.record.timestamps import seal_timestamp
from ceremony.record.transcript import read_entries
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.ceremony_files import CEREMONIES, approve, live_workspace, run, variant
from tests.support.tsa import LocalTsa, name_tsa


def _date_deviations(transcript: Path) -> list[str]:
    return [e["what"] for e in read_entries(transcript) if e["event"] == "deviation" and e["what"].startswith("run on")]


def test_a_ceremony_on_its_files_date_records_no_date_deviation(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    outcome = run(ws, CEREMONIES / "token-init.yaml")  # dated 2026-12-01, the suite's pinned day
    assert _date_deviations(outcome.transcript) == []


def test_a_ceremony_on_another_day_records_both_dates(tmp_path: Path, suite_clock) -> None:  # type: ignore[no-untyped-def]
    ws = live_workspace(tmp_path / "ws", "software")
    later = (suite_clock.now() + timedelta(days=3)).date().isoformat()
    path = variant(tmp_path / "files", "token-init.yaml", {"date": later})
    outcome = run(ws, path)
    today = suite_clock.now().date().isoformat()
    assert _date_deviations(outcome.transcript) == [f"run on {today}; the ceremony file is dated {later}"]


#: A live workspace keeps its keys on a PKCS#11 token; init leaves the token to its ceremony (no library loaded).
LIVE_STORE = "pkcs11"
needs_softhsm = pytest.mark.skipif(find_softhsm_module() is None, reason="SoftHSM2 is not installed")


@needs_softhsm
def test_a_live_workspace_refuses_a_pinned_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = __import__("os").environ[PIN_VARIABLE]
    monkeypatch.delenv(PIN_VARIABLE)
    init_workspace(tmp_path / "live", key_store=LIVE_STORE).close()
    monkeypatch.setenv(PIN_VARIABLE, pinned)
    with pytest.raises(ConfigError, match=f"{PIN_VARIABLE} is set, but .* is a live workspace"):
        Workspace.open(tmp_path / "live")
    with pytest.raises(ConfigError, match="is a live workspace"):
        init_workspace(tmp_path / "live2", key_store=LIVE_STORE)
    assert not (tmp_path / "live2").exists()


@needs_softhsm
def test_a_live_workspace_edited_into_a_test_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_VARIABLE)
    init_workspace(tmp_path / "live", key_store=LIVE_STORE).close()
    config = tmp_path / "live" / "workspace.yaml"
    config.write_text(config.read_text().replace("purpose: live", "purpose: test"))
    with pytest.raises(ConfigError, match="purpose is 'test', but the journal recorded 'live' at init"):
        Workspace.open(tmp_path / "live")


# --- attended: a finished step run again, a wrong share typed again, words to read aloud -------
class Room:
    """The people at an attended console: scripted ids at input(), the cards they hold at getpass()."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
        self.ws = ws
        self.ids: list[str] = []
        self.prompts: list[str] = []
        self.handed: dict[str, int] = {}
        #: custodian -> the card they type by mistake, once, before their own
        self.mistakes: dict[str, str] = {}
        monkeypatch.setattr("builtins.input", self._input)
        monkeypatch.setattr("getpass.getpass", self._getpass)

    def card(self, split: str, custodian: str) -> str:
        return read_share_card(self.ws / "share-cards" / f"token-init-2026-12.s1sp-ca-token.{split}.{custodian}.txt")

    def _input(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        return self.ids.pop(0)

    def _getpass(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        who = prompt.strip().split(",")[0].lstrip("[").split("] ")[-1]
        if who in self.mistakes:
            return self.mistakes.pop(who)
        if "back in" in prompt:  # token-init: each card typed back in the order handed out
            n = self.handed[who] = self.handed.get(who, -1) + 1
            return self.card(("user-pin", "so-pin")[n % 2], who)
        return self.card("user-pin", who)


def _steps_of(transcript: Path) -> list[str]:
    return [str(e["step"]) for e in read_entries(transcript) if e["event"] in ("step", "step.failed")]


def test_an_attended_root_ceremony_retypes_a_wrong_share_shows_finished_steps_and_reads_the_words(
    tmp_path: Path, key_store_kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    room = Room(monkeypatch, ws)
    room.ids = ["alice"]
    approve(ws, CEREMONIES / "token-init.yaml")
    procedures.run(CEREMONIES / "token-init.yaml", ws, console=Attended())
    approve(ws, CEREMONIES / "root-ca.yaml")
    root = procedures.begin(CEREMONIES / "root-ca.yaml", ws, console=Attended())
    capsys.readouterr()
    # dave types carol's card by mistake: he is named, types his own, and the step goes on.
    room.ids, room.mistakes = ["carol", "dave", "dave"], {"dave": room.card("user-pin", "carol")}
    activated = root.step("activate")
    out = capsys.readouterr().out
    assert (
        "step 'activate': the share typed by dave is not the share dave was handed \u2014 dave, type your share "
        "again (try 2 of 3)\n" in out
    )
    assert activated["details"]["shares_typed_again"] == {"dave": 1}
    assert set(activated["details"]["shares_presented"]) == {"carol", "dave"}
    transcript = root.transcript.path
    before, asked = transcript.read_bytes(), len(room.prompts)
    # Shift+Enter on the finished cell: its result again, nobody asked, nothing recorded or done.
    assert root.step("activate") is activated
    assert capsys.readouterr().out == (
        f"step 'activate' was already done at {activated['time'][:10]} {activated['time'][11:19]} UTC by carol, "
        "dave; it is not run again and nothing new is recorded. Its result:\n"
        "  ok: token 's1sp-ca-token' activated by 2 custodians' PIN shares\n"
    )
    assert transcript.read_bytes() == before and len(room.prompts) == asked
    with pytest.raises(StateError) as err:
        root.step("fingerprint")
    assert err.value.message == "step 'fingerprint' is out of order; the next step is generate-key"
    room.ids = ["bob"]
    for step in ("generate-key", "issue-certificate", "check-naming"):
        root.step(step)
    capsys.readouterr()
    root.step("fingerprint")
    out = capsys.readouterr().out
    statement = (ws / "artifacts" / "cas" / "s1sp-root.fingerprint.txt").read_text()
    words = statement.split("Read aloud: ", 1)[1].split("\n", 1)[0]
    digest = statement.split("SHA-256:    ", 1)[1].split("\n", 1)[0]
    assert f"  read aloud: fingerprint words: {words}\n  read aloud: SHA-256: {digest}\n" in out
    outcome = root.finish()
    sealed = transcript.read_bytes()
    assert f"read aloud: {outcome.words}" in capsys.readouterr().out
    assert root.finish() is outcome
    assert "the ceremony was already sealed at 2026-12-01 " in (again := capsys.readouterr().out)
    assert again.endswith(f"read aloud: {outcome.words}\n")
    assert transcript.read_bytes() == sealed
    assert _steps_of(transcript) == [
        "token.activate", "key.generate", "certificate.issue", "naming.check", "fingerprint.statement"
    ]  # fmt: skip
    root.ws.close()


def test_a_wrong_share_fails_an_unattended_step_at_once_and_the_ceremony_is_over(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run(ws, CEREMONIES / "token-init.yaml")
    approve(ws, CEREMONIES / "root-ca.yaml")
    carol = ws / "share-cards" / "token-init-2026-12.s1sp-ca-token.user-pin.carol.txt"
    deposited = sorted((ws / "secrets").rglob("*.share"))
    assert [p.name for p in deposited] == ["carol.share", "dave.share"]
    deposited[1].write_text(read_share_card(carol) + "\n")  # dave's deposited share is carol's
    root = procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    with pytest.raises(CustodyError) as err:
        root.step("activate")
    assert (err.value.custodian, err.value.message) == (
        "dave",
        "the share typed by dave is not the share dave was handed",
    )
    assert display.error_line(err.value) == "step 'activate': " + err.value.message
    kept = root.transcript.path.read_bytes()
    for again in (lambda: root.step("activate"), root.finish):
        with pytest.raises(StateError) as ended:
            again()
        assert ended.value.message.startswith(
            "ceremony root-ca-2026-12 ended unsealed when step 'activate' failed (its transcript root-ca-2026-12.jsonl "
            "keeps the failure); nothing more runs in it: `ceremony abandon root-ca-2026-12`"
        )
    assert root.transcript.path.read_bytes() == kept
    assert _steps_of(root.transcript.path) == ["activate"]  # the step.failed entry only
    root.ws.close()


def test_an_attended_custodian_who_types_a_card_back_wrong_three_times_fails_the_step_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    room = Room(monkeypatch, ws)
    room.ids = ["alice"]
    approve(ws, CEREMONIES / "token-init.yaml")
    token = procedures.begin(CEREMONIES / "token-init.yaml", ws, console=Attended())
    # carol types dave's card back in, every time (the cards are written as the step hands them out).
    monkeypatch.setattr("getpass.getpass", lambda prompt="": room.card("user-pin", "dave"))
    with pytest.raises(CustodyError) as err:
        token.step("initialise")
    assert (err.value.custodian, err.value.message) == (
        "carol",
        "carol's share as typed back does not match its card (3 tries)",
    )
    out = capsys.readouterr().out
    for tried in (2, 3):
        assert (
            "step 'initialise': carol's share as typed back does not match its card \u2014 carol, type your share "
            f"back in again (try {tried} of 3)\n" in out
        )
    (failed,) = [e for e in read_entries(token.transcript.path) if e["event"] == "step.failed"]
    assert (failed["step"], failed["message"]) == ("initialise", err.value.message)
    token.ws.close()


def test_a_seal_made_in_reach_of_the_tsa_is_timestamped_at_once(
    tmp_path: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    name_tsa(ws, tsa)
    outcome = run(ws, CEREMONIES / "token-init.yaml")
    out = capsys.readouterr().out
    assert "the seal of transcripts/token-init-2026-12.jsonl: timestamped by Test TSA at " in out
    assert "checkpoint 1: timestamped by Test TSA at " in out  # the checkpoint the seal made
    assert outcome.transcript.with_suffix(".seal.tsr").is_file()
    verdict = seal_timestamp(outcome.transcript)
    assert verdict is not None and verdict.ok and verdict.message.startswith("timestamped by Test TSA at ")


def test_a_seal_made_offline_is_timestamped_when_the_next_ceremony_starts(
    tmp_path: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    name_tsa(ws, tsa, timeout=0.5)
    tsa.stop()  # the ceremony room has no network
    outcome = run(ws, CEREMONIES / "token-init.yaml")
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith(
            "not yet timestamped: the seal of transcripts/token-init-2026-12.jsonl, checkpoint 1: the TSA at "
            f"{tsa.url} is out of reach (connection refused); the next online step stamps them "
            "(`ceremony transcript timestamp`)"
        )
    )
    token = outcome.transcript.with_suffix(".seal.tsr")
    assert outcome.words and not token.exists()
    tsa.start()
    approve(ws, CEREMONIES / "root-ca.yaml")
    root = procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    out = capsys.readouterr().out
    assert "the seal of transcripts/token-init-2026-12.jsonl: timestamped by Test TSA at " in out
    assert token.is_file() and (ws / "timestamping" / "checkpoints" / "checkpoint-1.tsr").is_file()
    (late,) = [e for e in read_entries(ws / "transcripts" / "token-init-2026-12.timestamps.log")]
    assert late["made_at"] == read_entries(outcome.transcript)[-1]["time"] <= late["time"]
    root.ws.close()
