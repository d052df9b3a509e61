"""PIN ceremonies on a real SoftHSM2 token: a quorum's PIN change (C_SetPIN), an SO reset (C_InitPIN), a custodian
change; old shares refused by the workbench and the old PIN refused by the token, new shares opening it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.errors import ConfigError, StateError
from ceremony.keys.custody import CustodyError, combine, deposited, pin_from_secret, read_share_card
from ceremony.keys.pkcs11 import pin_accepted
from ceremony.procedures import activation
from ceremony.procedures.consoles import Unattended
from ceremony.record.transcript import diff_transcripts, read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import (
    CEREMONIES,
    Presenting,
    approve,
    live_workspace,
    run,
    run_examples,
    run_notebooks,
    variant,
)
from tests.support.processes import in_child

pytestmark = pytest.mark.hsm

TOKEN = "s1sp-ca-token"  # noqa: S105 - a label
USER, SO = f"{TOKEN}.user-pin", f"{TOKEN}.so-pin"


def _held(ws: Path, purpose: str) -> list[tuple[str, str]]:
    """The shares resting in the test workspace for unattended runs (custodian, words)."""
    return deposited(ws / "secrets" / "shares" / purpose)


def _pin(shares: list[tuple[str, str]]) -> str:
    return pin_from_secret(combine([w for _, w in shares]))


def _accepted(ws: Path, pin: str, *, so: bool = False) -> bool:
    opened = Workspace.open(ws)
    try:
        module, conf = opened.config.key_store.module, opened.softhsm_conf
        assert module is not None
        return pin_accepted(module, TOKEN, conf, pin, so=so)
    finally:
        opened.close()


def _steps(transcript: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {e["step"]: e for e in read_entries(transcript) if e.get("event") == "step"}


def _key_10(ws: Path) -> list[tuple[str, str, str]]:
    """KEY-10's findings on the workspace now: (outcome, subject, code)."""
    from ceremony.compliance.assessment import run_control
    from ceremony.compliance.sources import Evidence
    from ceremony.model.catalogue import load_catalogue

    opened = Workspace.open(ws)
    try:
        control = next(c for c in load_catalogue().controls if c.id == "KEY-10")
        return [(f.outcome, f.subject, f.code) for f in run_control(control, Evidence(opened))]
    finally:
        opened.close()


def _activate_with(ws: Path, shares: list[tuple[str, str]]) -> str:
    """Daily activation's check of presented shares against the split on record; returns the PIN they rebuild."""
    opened = Workspace.open(ws)
    try:
        pin, _, _ = activation.presented_pin(opened, TOKEN, Presenting(ws, {USER: shares}))
        return pin
    finally:
        opened.close()


def test_a_pin_change_replaces_both_pins_and_old_shares_open_nothing(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    old_user, old_so = _held(ws, USER), _held(ws, SO)
    outcome = in_child(run, ws, CEREMONIES / "pin-change.yaml")
    assert verify_transcript(outcome.transcript).ok
    steps = _steps(outcome.transcript)
    assert steps["pin.verify"]["details"]["old_pin_refused"] == {"so": True, "user": True}
    retired = steps["share_cards.retire"]["details"]["retired"]
    assert retired[USER]["split_by"] == "token-init-2026-12"
    assert retired[USER]["cards"]["carol"] == {
        "fingerprint": _steps(ws / "transcripts" / "token-init-2026-12.jsonl")["token.initialise"]["details"][USER][
            "shares"
        ]["carol"],
        "bag": "TEB-100231",
        "state": "destroyed",
    }
    text = outcome.transcript.read_text()
    assert all(words not in text for _, words in old_user + _held(ws, USER))  # only fingerprints on record
    # The old shares: refused by name at activation, and the PIN they rebuild refused by the token.
    with pytest.raises(CustodyError, match="carol's share is not the one recorded for them .*pin-change-2027-05"):
        in_child(_activate_with, ws, old_user)
    assert in_child(_accepted, ws, _pin(old_user)) is False
    assert in_child(_accepted, ws, _pin(old_so), so=True) is False
    # The new shares activate; the new SO PIN logs the SO in.
    new_user = _held(ws, USER)
    assert new_user != old_user
    assert in_child(_activate_with, ws, new_user) == _pin(new_user)
    assert in_child(_accepted, ws, _pin(_held(ws, SO)), so=True) is True
    split = in_child(lambda: activation.pin_split(Workspace.open(ws), TOKEN))
    assert split.ceremony_id == "pin-change-2027-05" and split.bags["erin"] == "TEB-100333"


def test_an_so_reset_sets_a_user_pin_no_quorum_could_rebuild(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    old_user = _held(ws, USER)
    for share in (ws / "secrets" / "shares" / USER).iterdir():
        share.unlink()  # the user PIN's cards are lost: only the SO quorum is left
    outcome = in_child(run, ws, CEREMONIES / "user-pin-reset.yaml")
    assert verify_transcript(outcome.transcript).ok
    steps = _steps(outcome.transcript)
    assert steps["pin.reset"]["details"][USER]["m"] == 2
    assert set(steps["token.activate"]["details"]["so_shares_presented"]) == {"carol", "dave"}
    assert in_child(_accepted, ws, _pin(old_user)) is False
    assert in_child(_activate_with, ws, _held(ws, USER)) == _pin(_held(ws, USER))
    with pytest.raises(CustodyError, match="is not the one recorded for them"):
        in_child(_activate_with, ws, old_user)


def test_a_custodian_change_leaves_the_leavers_card_useless_to_any_quorum(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    old = dict(_held(ws, USER))  # carol's and dave's deposited shares
    cards = {c: p for p in (ws / "share-cards").glob("token-init-2026-12.s1sp-ca-token.user-pin.*.txt")
             for c in [p.name.split(".")[-2]]}  # fmt: skip

    erin_old = read_share_card(cards["erin"])  # the leaver's card, perhaps copied before she left
    change = variant(
        tmp_path, "pin-change.yaml",
        {"pins": ["user", "so"], "leaving": ["erin"], "participants.custodians": ["carol", "dave", "grace"],
         "bags.share_cards": {"carol": "TEB-200001", "dave": "TEB-200002", "grace": "TEB-200003"}},
    )  # fmt: skip
    outcome = in_child(run, ws, change)
    assert verify_transcript(outcome.transcript).ok
    retired = _steps(outcome.transcript)["share_cards.retire"]["details"]
    assert retired["leaving"] == ["erin"]
    assert retired["retired"][USER]["cards"]["erin"]["state"] == "not handed back: the holder left"
    assert retired["retired"][USER]["cards"]["erin"]["bag"] == "TEB-100233"
    split = in_child(lambda: activation.pin_split(Workspace.open(ws), TOKEN))
    assert set(split.shares) == {"carol", "dave", "grace"}
    new = dict(_held(ws, USER))
    # The leaver's card with a current custodian's new card: refused by name (erin holds no current share) ...
    with pytest.raises(CustodyError):
        in_child(_activate_with, ws, [("carol", new["carol"]), ("erin", erin_old)])
    # ... and with an old card of a current custodian it rebuilds the old PIN, which the token refuses.
    assert in_child(_accepted, ws, _pin([("carol", old["carol"]), ("erin", erin_old)])) is False
    assert in_child(_accepted, ws, _pin(list(new.items()))) is True
    # On the register erin has left; KEY-10 finds no current share with her and the replaced cards retired.
    people = ws / "people.yaml"
    people.write_text(people.read_text().replace("  erin:\n", "  erin:\n    left: '2026-12-01'\n", 1))
    assert in_child(_key_10, ws) == [("pass", "", "pass")]


def test_the_file_must_account_for_every_current_holder_and_seat_a_quorum_of_them(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    cases = {
        "unaccounted": ({"participants.custodians": ["carol", "dave", "grace"],
                         "bags.share_cards": {"carol": "T1", "dave": "T2", "grace": "T3"}},
                        "participants.custodians: erin hold(s) a current share; seat them (their old cards are "
                        "retired here) or list them under leaving"),
        "no quorum": ({"participants.custodians": ["carol", "frank", "grace"], "leaving": ["dave", "erin"],
                       "bags.share_cards": {"carol": "T1", "frank": "T2", "grace": "T3"}},
                      "participants.custodians: 1 of the user PIN's current custodians (carol, dave, erin; 2 needed, "
                      "split by token-init-2026-12) are seated; an SO reset (user-pin-reset) sets a user PIN no "
                      "quorum can rebuild"),
        "not a holder": ({"leaving": ["grace"]}, "leaving[0]: grace holds no share of the PINs this ceremony changes"),
    }  # fmt: skip
    for name, (change, message) in cases.items():
        path = variant(tmp_path, "pin-change.yaml", change, as_name=f"{name.replace(' ', '-')}.yaml")
        with pytest.raises(ConfigError) as caught:
            in_child(run, ws, path)
        assert caught.value.message.endswith(message), name
    assert not (ws / "transcripts" / "pin-change-2027-05.jsonl").exists()  # refused before anything was written


def test_the_software_store_has_no_pin_to_change(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    with pytest.raises(ConfigError, match="software key store, which has no token PIN to change"):
        run(ws, CEREMONIES / "pin-change.yaml")


def test_a_rehearsal_differs_from_the_live_run_only_where_it_must(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    rehearsed = in_child(procedures.run, CEREMONIES / "pin-change.yaml", ws, rehearsal=True)
    assert rehearsed.transcript == ws / "rehearsal" / "transcripts" / "pin-change-2027-05.jsonl"
    assert verify_transcript(rehearsed.transcript).ok
    assert not (ws / "transcripts" / "pin-change-2027-05.jsonl").exists()
    assert in_child(_activate_with, ws, _held(ws, USER))  # the live token's PIN is untouched
    real = in_child(run, ws, CEREMONIES / "pin-change.yaml")
    diff = "\n".join(diff_transcripts(rehearsed.transcript, real.transcript))
    assert '"rehearsal":true' in diff and "rehearsal.token" in diff
    for step in ("custody.split", "pin.change", "pin.verify"):
        assert step not in diff, step  # the same steps, actors and records in both
    # The rehearsal's retired cards are the throwaway token's, the live run's the token-init's.
    assert "share_cards.retire" in diff


def test_a_reset_refuses_an_so_share_that_is_not_on_record(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    user = _held(ws, USER)  # user-PIN shares offered as SO shares
    outcome_error = None
    try:
        in_child(run, ws, CEREMONIES / "user-pin-reset.yaml", console=Presenting(ws, {SO: user}))
    except CustodyError as exc:
        outcome_error = exc.message
    assert outcome_error is not None and "so PIN share is not the one recorded for them" in outcome_error
    entries = read_entries(ws / "transcripts" / "user-pin-reset-2027-04.jsonl")
    assert entries[-1]["event"] == "step.failed" and entries[-1]["step"] == "activate-so"
    assert in_child(_activate_with, ws, user)  # nothing changed on the token


def test_an_unsealed_pin_change_that_set_the_pin_still_names_the_shares_that_open_the_token(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")

    def stop_after_change() -> None:
        path = CEREMONIES / "pin-change.yaml"
        approve(ws, path)
        procedure = procedures.begin(path, ws, console=Unattended(Workspace.open(ws)))
        for step in ("activate", "split", "change"):
            procedure.step(step)
        # the room empties here: no verify, no seal

    in_child(stop_after_change)
    assert not verify_transcript(ws / "transcripts" / "pin-change-2027-05.jsonl").ok
    # The old cards were never recorded retired: KEY-10 says so for both PINs.
    assert sorted(in_child(_key_10, ws)) == [
        ("fail", f"split {SO}", "cards-not-retired"),
        ("fail", f"split {USER}", "cards-not-retired"),
    ]
    assert in_child(_activate_with, ws, _held(ws, USER)) == _pin(_held(ws, USER))
    with pytest.raises(StateError, match="does not verify"):
        path = ws / "transcripts" / "pin-change-2027-05.jsonl"
        path.write_text(path.read_text().replace('"m":2', '"m":3', 1))
        in_child(_activate_with, ws, _held(ws, USER))


@pytest.mark.slow
def test_the_pin_notebooks_run_under_papermill_one_after_the_other(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    run_notebooks(ws, [("66-pin-change-ceremony", "pin-change"), ("67-user-pin-reset-ceremony", "user-pin-reset")])
    split = in_child(lambda: activation.pin_split(Workspace.open(ws), TOKEN))
    assert split.ceremony_id == "user-pin-reset-2027-04"
    assert in_child(_activate_with, ws, _held(ws, USER)) == _pin(_held(ws, USER))
