"""The custodian change of a backup key (backup-rewrap) on a real SoftHSM2 token and on the software store: the
backup restored into a scratch token, wrapped under a new key split among the new custodians, restore-tested from
the new shares, the scratch copies destroyed, the old blob and cards retired; the leaver's card helps no quorum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.errors import ConfigError, InputError
from ceremony.keys.custody import combine, deposited, kcv
from ceremony.record.transcript import diff_transcripts, read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, live_workspace, run, run_examples, run_notebooks, variant
from tests.support.processes import in_child

pytestmark = pytest.mark.hsm

KEK = "ca-s1sp-root.kek"
OLD = "artifacts/backups/ca-s1sp-root.wrapped"
NEW = "artifacts/backups/ca-s1sp-root.backup-rewrap-2027-05.wrapped"
SCRATCH = "s1sp-rewrap-token"


def _held(ws: Path, purpose: str = KEK) -> list[tuple[str, str]]:
    return deposited(ws / "secrets" / "shares" / purpose)


def _steps(transcript: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {e["step"]: e for e in read_entries(transcript) if e.get("event") == "step"}


def _key_10(ws: Path, control_id: str = "KEY-10") -> list[tuple[str, str, str]]:
    """A control's findings on the workspace now: (outcome, subject, code)."""
    from ceremony.compliance.assessment import run_control
    from ceremony.compliance.sources import Evidence
    from ceremony.model.catalogue import load_catalogue

    opened = Workspace.open(ws)
    try:
        control = next(c for c in load_catalogue().controls if c.id == control_id)
        return [(f.outcome, f.subject, f.code) for f in run_control(control, Evidence(opened))]
    finally:
        opened.close()


def _labels(ws: Path, token: str) -> set[str]:
    """The key labels on a token of the workspace (a software store's: its key files)."""
    from ceremony.procedures.asymmetric import labels_on_token

    opened = Workspace.open(ws)
    try:
        found = labels_on_token(opened, token)
        if found is None:  # a software store's other "token" is a directory of key files
            found = {p.name.removesuffix(".key.pem") for p in opened.software_dir(token).glob("*.key.pem")}
        return found
    finally:
        opened.close()


def _token_exists(ws: Path, label: str) -> bool:
    opened = Workspace.open(ws)
    try:
        return opened.token_exists(label)
    finally:
        opened.close()


def _frank_leaves(ws: Path) -> None:
    people = ws / "people.yaml"
    people.write_text(people.read_text().replace("  frank:\n", "  frank:\n    left: '2026-12-01'\n", 1))


@pytest.mark.parametrize("kind", ["pkcs11", "software"])
def test_a_rewrap_rotates_the_backup_key_and_retires_the_old_blob_and_cards(tmp_path: Path, kind: str) -> None:
    ws = live_workspace(tmp_path / "ws", kind)
    run_examples(ws, "key-restore")
    old_shares = _held(ws)
    old_meta = json.loads((ws / f"{OLD}.json").read_text())
    _frank_leaves(ws)
    assert ("fail", f"split {KEK}", "leaver-holds-share") in in_child(_key_10, ws)

    outcome = in_child(run, ws, CEREMONIES / "backup-rewrap.yaml")
    assert verify_transcript(outcome.transcript).ok
    steps = _steps(outcome.transcript)
    new_meta = json.loads((ws / f"{NEW}.json").read_text())
    # A new key, split among the seated custodians only; the new metadata names the blob it replaces.
    assert new_meta["kcv"] != old_meta["kcv"]
    assert set(new_meta["shares"]) == {"carol", "dave", "erin", "grace"} and new_meta["quorum"] == {"m": 3, "n": 4}
    assert new_meta["supersedes"]["wrapped_sha256"] == old_meta["wrapped_sha256"]
    assert new_meta["public_key"] == old_meta["public_key"]
    # The restore test used the new shares, and the signature verified under the CA certificate.
    assert steps["key.prove"]["details"]["verified"] is True
    assert set(steps["key.prove"]["details"]["shares_presented"]) <= set(new_meta["shares"])
    # Both copies on the scratch token are gone; only its seal key is left.
    assert steps["key.destroy"]["details"]["gone"] is True
    assert in_child(_labels, ws, SCRATCH) == {"ceremony-seal"}
    # The old cards retired with their bags; frank's recorded as not handed back.
    retired = steps["share_cards.retire"]["details"]
    cards = retired["retired"][KEK]["cards"]
    assert retired["retired"][KEK]["split_by"] == "key-backup-2026-12"
    assert cards["frank"] == {
        "fingerprint": old_meta["shares"]["frank"],
        "bag": "TEB-100264",
        "state": "not handed back: the holder left",
    }
    assert cards["carol"]["state"] == "destroyed"
    assert retired["backup_retired"]["wrapped_sha256"] == old_meta["wrapped_sha256"]
    # Trial-run deposits: the old key's shares rest no more, the new ones rebuild the new key only.
    new_shares = _held(ws)
    assert not set(new_shares) & set(old_shares)
    assert kcv(combine([w for _, w in new_shares])) == new_meta["kcv"]
    text = outcome.transcript.read_text()
    assert all(words not in text for _, words in old_shares + new_shares)  # fingerprints only
    # KEY-08: the scratch copies were destroyed under witness in the sealed re-wrap; KEY-04: nothing unrecorded.
    assert in_child(_key_10, ws, "KEY-08") == [("pass", "", "pass")]
    assert in_child(_key_10, ws, "KEY-04") == [("pass", "", "pass")]
    # KEY-10: no current share of the backup key with the leaver, the replaced cards retired. The restore test's
    # token still has frank's PIN shares: on a token, a PIN custodian change of that token clears them too.
    assert not [f for f in in_child(_key_10, ws) if KEK in f[1]]
    if kind == "pkcs11":
        restore_token = variant(tmp_path, "pin-change.yaml", {
            "ceremony_id": "custodian-change-restore", "token.label": "s1sp-restore-token", "pins": ["user", "so"],
            "leaving": ["frank"], "participants.custodians": ["carol", "dave", "erin", "grace"],
            "quorum": {"m": 3, "n": 4}, "bags.share_cards": {c: f"P-{c}" for c in ("carol", "dave", "erin", "grace")},
        }, as_name="restore-token.yaml")  # fmt: skip
        assert verify_transcript(in_child(run, ws, restore_token).transcript).ok
        assert in_child(_key_10, ws) == [("pass", "", "pass")]
    # The old blob is refused from now on; the new one restores with the new custodians.
    seats = {"participants.custodians": ["carol", "dave", "erin", "grace"], "quorum": {"m": 3, "n": 4},
             "bags.share_cards": {c: f"B-{c}" for c in ("carol", "dave", "erin", "grace")}}  # fmt: skip
    old_file = {"ceremony_id": "key-restore-old", "token.label": "t-old", "bags.tokens": {"t-old": "B1"}, **seats}
    restore_old = variant(tmp_path, "key-restore.yaml", old_file, as_name="old.yaml")
    with pytest.raises(InputError, match=f"was retired by backup-rewrap-2027-05.*restore from {NEW}"):
        in_child(run, ws, restore_old)
    assert not (ws / "transcripts" / "key-restore-old.jsonl").exists()  # refused before its token was made
    assert in_child(_token_exists, ws, "t-old") is False
    restore_new = variant(tmp_path, "key-restore.yaml", {
        "ceremony_id": "key-restore-new", "backup": NEW, "token.label": "t-new", "bags.tokens": {"t-new": "B2"},
        **seats,
    }, as_name="new.yaml")  # fmt: skip
    restored = in_child(run, ws, restore_new)
    assert _steps(restored.transcript)["key.prove"]["details"]["verified"] is True


def test_the_leavers_old_card_with_new_cards_rebuilds_nothing(tmp_path: Path) -> None:
    """frank's card (perhaps copied) is a share of the old backup key only: with the new cards it rebuilds no key;
    with m old cards it rebuilds the old key, which opens only the retired blob (docs/security.md)."""
    from ceremony.keys.custody import CustodyError, read_share_card

    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "key-backup")
    frank = read_share_card(next((ws / "share-cards").glob("key-backup-2026-12.ca-s1sp-root.kek.frank.txt")))
    old_m = _held(ws)
    in_child(run, ws, CEREMONIES / "backup-rewrap.yaml")
    new = _held(ws)
    new_kcv = json.loads((ws / f"{NEW}.json").read_text())["kcv"]
    with pytest.raises(CustodyError):
        combine([frank, *(w for _, w in new[:2])])
    rebuilt = combine([frank, *(w for _, w in old_m[:2])])
    assert kcv(rebuilt) != new_kcv
    assert kcv(rebuilt) == json.loads((ws / f"{OLD}.json").read_text())["kcv"]


def test_the_file_must_account_for_every_holder_and_name_a_scratch_token(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "key-backup")
    cases = {
        "live token": ({"token.label": "s1sp-ca-token", "bags.tokens": {"s1sp-ca-token": "B"}},
                       "token.label: 's1sp-ca-token' is the live token; a re-wrap restores the backup into a scratch "
                       "token of its own (the live key stays non-extractable)"),
        "unaccounted": ({"leaving": []},
                        "participants.custodians: frank hold(s) a share of the old backup key; seat them (their old "
                        "cards are retired here) or list them under leaving"),
        "not a holder": ({"leaving": ["frank", "victor"]},
                         "leaving[1]: victor holds no share of artifacts/backups/ca-s1sp-root.wrapped's backup key"),
        "no quorum": ({"participants.custodians": ["carol", "dave"], "leaving": ["erin", "frank", "grace"],
                       "quorum": {"m": 2, "n": 2}, "bags.share_cards": {"carol": "1", "dave": "2"}},
                      None),
        "wrong key": ({"key_label": "ca-s1sp-issuing"},
                      "key_label: artifacts/backups/ca-s1sp-root.wrapped is a backup of 'ca-s1sp-root', not "
                      "'ca-s1sp-issuing'"),
    }  # fmt: skip
    for name, (change, message) in cases.items():
        path = variant(tmp_path, "backup-rewrap.yaml", change, as_name=f"{name.replace(' ', '-')}.yaml")
        if message is None:  # 2 of the old holders seated, 3 needed: refused, naming the split
            message = (
                "participants.custodians: 2 of the old backup key's holders (carol, dave, erin, frank, grace; 3 "
                "needed, split by key-backup-2026-12) are seated"
            )
        with pytest.raises(ConfigError) as caught:
            run(ws, path)
        assert caught.value.message.endswith(message), (name, caught.value.message)
    assert not (ws / "transcripts" / "backup-rewrap-2027-05.jsonl").exists()


def test_a_rehearsal_differs_from_the_live_run_only_where_it_must(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "key-restore")
    for kind in ("token-init", "root-ca", "key-backup"):  # the rehearsal area's own backup of its own root
        in_child(procedures.run, CEREMONIES / f"{kind}.yaml", ws, rehearsal=True)
    rehearsed = in_child(procedures.run, CEREMONIES / "backup-rewrap.yaml", ws, rehearsal=True)
    assert rehearsed.transcript == ws / "rehearsal" / "transcripts" / "backup-rewrap-2027-05.jsonl"
    assert verify_transcript(rehearsed.transcript).ok
    assert not (ws / NEW).exists()
    real = in_child(run, ws, CEREMONIES / "backup-rewrap.yaml")
    diff = "\n".join(diff_transcripts(rehearsed.transcript, real.transcript))
    assert '"rehearsal":true' in diff
    for step in ("custody.split", "key.wrap", "key.destroy", "share_cards.retire"):
        assert f'"step":"{step}"' not in diff, step


@pytest.mark.slow
def test_the_rewrap_notebook_runs_under_papermill(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "key-restore")
    (transcript,) = run_notebooks(ws, [("61-backup-rewrap-ceremony", "backup-rewrap")])
    assert _steps(transcript)["key.prove"]["details"]["verified"] is True
    assert (ws / NEW).is_file()
