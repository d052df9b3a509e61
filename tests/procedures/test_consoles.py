"""Who is at the keyboard: an unattended console confirms nothing and reads secrets/; an attended one asks people."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ceremony.keys import custody, symmetric
from ceremony.keys.custody import CustodyError
from ceremony.procedures.consoles import Attended, Unattended, kernel_console
from ceremony.record.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    yield workspace
    workspace.close()


class Keyboard:
    """Scripted answers to ``input()`` and ``getpass()``, and the prompts each was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, typed: list[str], hidden: list[str] | None = None) -> None:
        self.typed, self.hidden = list(typed), list(hidden or [])
        self.prompts: list[str] = []
        self.hidden_prompts: list[str] = []
        monkeypatch.setattr("builtins.input", self._input)
        monkeypatch.setattr("getpass.getpass", self._getpass)

    def _input(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        return self.typed.pop(0)

    def _getpass(self, prompt: str = "") -> str:
        self.hidden_prompts.append(prompt)
        return self.hidden.pop(0)


# --- unattended -------------------------------------------------------------------------------
def test_unattended_confirms_nothing(ws: Workspace) -> None:
    console = Unattended(ws)
    assert console.attended is False
    assert console.confirm("G1", "the key is generated", ["alice", "bob"]) is None


def test_unattended_reads_the_shares_deposited_in_secrets(ws: Workspace) -> None:
    shares = custody.split(custody.new_secret(16), 2, ["carol", "alice", "bob"])
    custody.deposit(ws.shares_dir("token-pin"), shares)
    presented = Unattended(ws).present_shares("token-pin", ["alice", "bob", "carol"], 2)
    assert presented == sorted((s.custodian, s.words) for s in shares)


@pytest.mark.parametrize("make_directory", [False, True])
def test_unattended_without_deposited_shares_is_a_custody_error(ws: Workspace, make_directory: bool) -> None:
    if make_directory:
        ws.shares_dir("backup-key").mkdir(parents=True)
    with pytest.raises(CustodyError) as err:
        Unattended(ws).present_shares("backup-key", ["alice", "bob"], 2)
    assert err.value.message == (
        f"no backup-key shares deposited in {ws.shares_dir('backup-key')} for an unattended run; "
        "the custodians present them in an attended run"
    )


def test_unattended_reenters_a_share_from_its_card(ws: Workspace) -> None:
    (share,) = custody.split(custody.new_secret(16), 1, ["alice"])
    card = custody.write_share_card(
        ws.root / "share-cards", ceremony_id="c1", purpose="token-pin", share=share, m=1, n=1, bag="B-1"
    )
    assert Unattended(ws).reenter_share("alice", card) == share.words


def test_unattended_reenters_a_component_from_its_card(ws: Workspace) -> None:
    component = symmetric.split(bytes(range(16)), ["alice", "bob"])[0]
    card = symmetric.write_component_card(
        ws.root / "share-cards", ceremony_id="c1", key_label="zmk", component=component, of=2, bag=None
    )
    assert Unattended(ws).reenter_component("alice", card) == component.value.hex()


def test_unattended_presents_a_component_deposited_in_secrets(ws: Workspace) -> None:
    path = ws.secrets_dir / "components" / "zmk" / "alice.component"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text("00112233445566778899aabbccddeeff\n", encoding="utf-8")
    path.chmod(0o600)
    assert Unattended(ws).present_component("zmk", "alice") == "00112233445566778899aabbccddeeff"
    with pytest.raises(CustodyError) as err:
        Unattended(ws).present_component("zmk", "bob")
    assert err.value.message == f"no component of zmk from bob in {path.parent} for an unattended run"


def test_both_consoles_show_text_on_stdout(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    Unattended(ws).show("step 3 of 9")
    Attended().show("step 4 of 9")
    assert capsys.readouterr().out == "step 3 of 9\nstep 4 of 9\n"


# --- attended ---------------------------------------------------------------------------------
def test_attended_waits_for_a_permitted_person(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keyboard = Keyboard(monkeypatch, ["mallory", "", "  bob  "])
    console = Attended()
    assert console.attended is True
    assert console.confirm("G2", "the CSR fingerprint matches", ["alice", "bob"]) == "bob"
    assert (
        keyboard.prompts == ["[G2] the CSR fingerprint matches\n  confirm by typing your person id (alice, bob): "] * 3
    )
    assert capsys.readouterr().out == "  'mallory' may not confirm this step\n  '' may not confirm this step\n"


def test_attended_collects_m_shares_from_distinct_custodians_without_echo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keyboard = Keyboard(monkeypatch, ["alice", "eve", "alice", "carol"], ["words of alice", "words of carol"])
    presented = Attended().present_shares("token-pin", ["alice", "bob", "carol"], 2)
    assert presented == [("alice", "words of alice"), ("carol", "words of carol")]
    assert keyboard.prompts == [
        "[token-pin] custodian 1 of 2, your person id: ",
        "[token-pin] custodian 2 of 2, your person id: ",
        "[token-pin] custodian 2 of 2, your person id: ",
        "[token-pin] custodian 2 of 2, your person id: ",
    ]
    # The words go through getpass only: never through input(), which echoes.
    assert keyboard.hidden_prompts == [
        "  alice, type your share words (not shown): ",
        "  carol, type your share words (not shown): ",
    ]
    out = capsys.readouterr().out
    assert out.count("is not a custodian of this ceremony, or has already presented a share") == 2
    assert "'eve'" in out and "'alice'" in out and "words of" not in out


def test_attended_reentry_and_components_are_typed_without_echo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keyboard = Keyboard(monkeypatch, [], ["share words", "c0ffee", "00ff"])
    console = Attended()
    assert console.reenter_share("alice", tmp_path / "card.txt") == "share words"
    assert console.reenter_component("bob", tmp_path / "card.txt") == "c0ffee"
    assert console.present_component("zmk", "carol") == "00ff"
    assert keyboard.prompts == []
    assert keyboard.hidden_prompts == [
        "  alice, type your share back in from your card (not shown): ",
        "  bob, type your component back in from your card (not shown): ",
        "[zmk] carol, type your component (hex, not shown): ",
    ]


# --- which console ----------------------------------------------------------------------------
def _ipython(monkeypatch: pytest.MonkeyPatch, shell: object) -> None:
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_a_kernel_whose_client_answers_input_is_attended(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> None:
    monkeypatch.delenv("CEREMONY_UNATTENDED", raising=False)
    _ipython(monkeypatch, SimpleNamespace(kernel=SimpleNamespace(_allow_stdin=True)))
    assert isinstance(kernel_console(ws), Attended)


@pytest.mark.parametrize(
    "shell",
    [
        None,
        SimpleNamespace(),
        SimpleNamespace(kernel=SimpleNamespace()),
        SimpleNamespace(kernel=SimpleNamespace(_allow_stdin=False)),
    ],
    ids=["no-ipython", "terminal-ipython", "kernel-without-stdin-flag", "papermill"],
)
def test_otherwise_the_console_is_unattended(monkeypatch: pytest.MonkeyPatch, ws: Workspace, shell: object) -> None:
    monkeypatch.delenv("CEREMONY_UNATTENDED", raising=False)
    _ipython(monkeypatch, shell)
    console = kernel_console(ws)
    assert isinstance(console, Unattended) and console.ws is ws


def test_ceremony_unattended_wins_over_an_attended_kernel(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> None:
    monkeypatch.setenv("CEREMONY_UNATTENDED", "1")
    _ipython(monkeypatch, SimpleNamespace(kernel=SimpleNamespace(_allow_stdin=True)))
    assert isinstance(kernel_console(ws), Unattended)
