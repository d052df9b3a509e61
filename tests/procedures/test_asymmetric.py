"""Ceremony procedures end to end, on a real SoftHSM2 token and on the software store."""

from __future__ import annotations

import builtins
import getpass
import hashlib
import json
from itertools import combinations
from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.cli.main import main
from ceremony.errors import ConfigError, InputError, StateError
from ceremony.keys.custody import CustodyError, read_share_card
from ceremony.model.events import Step
from ceremony.procedures.consoles import Attended
from ceremony.record.transcript import Journal, diff_transcripts, read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import (
    CEREMONIES,
    ORDER,
    Presenting,
    approve,
    live_workspace,
    run,
    run_examples,
    variant,
    write_register,
)
from tests.support.processes import in_child


def _steps(transcript: Path) -> dict[str, dict[str, object]]:
    return {str(e["step"]): e for e in read_entries(transcript) if e.get("event") == "step"}


def test_every_example_ceremony_runs_seals_and_verifies(tmp_path: Path, key_store_kind: str) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    done = run_examples(ws, "key-destruction")
    assert list(done) == list(ORDER)
    for outcome in done.values():
        report = verify_transcript(outcome.transcript)
        assert report.ok, report.message
        assert report.words == outcome.words and len(outcome.words.split()) == 8
    _check_ceremonies_on_record(ws, done)
    # Key attributes are on record at generation, backup and restore.
    generated = _steps(done["root-ca"].transcript)["key.generate"]["details"]["attributes"]  # type: ignore[index]
    before_backup = _steps(done["key-backup"].transcript)["key.attributes"]["details"]["attributes"]  # type: ignore[index]
    restored = _steps(done["key-restore"].transcript)["key.unwrap"]["details"]  # type: ignore[index]
    if key_store_kind == "pkcs11":
        assert (
            generated
            == before_backup
            == {
                "SENSITIVE": True,
                "EXTRACTABLE": True,
                "LOCAL": True,
                "ALWAYS_SENSITIVE": True,
                "NEVER_EXTRACTABLE": False,
                "WRAP_WITH_TRUSTED": False,
            }
        )
        assert restored["attributes"] == {  # type: ignore[index]
            "SENSITIVE": True,
            "EXTRACTABLE": False,
            "LOCAL": False,
            "ALWAYS_SENSITIVE": False,
            "NEVER_EXTRACTABLE": False,
            "WRAP_WITH_TRUSTED": False,
        }
        assert restored["protection_check"] == "ok"  # type: ignore[index]
    else:
        assert restored["protection_check"].startswith("not applicable")  # type: ignore[index,union-attr]
    proof = _steps(done["key-restore"].transcript)["key.prove"]
    assert proof["result"] == "ok" and proof["details"]["verified"] is True  # type: ignore[index]
    _check_export_forbidden_after_the_restore_test(ws, done, key_store_kind)
    statement = done["root-ca"].outputs["fingerprint_statement"].read_text()
    assert "SHA-256:" in statement and "Read aloud:" in statement and "REHEARSAL" not in statement


def _check_export_forbidden_after_the_restore_test(
    ws: Path, done: dict[str, procedures.Outcome], key_store_kind: str
) -> None:
    """The issuing key (no backup) is generated never extractable; the root key is EXTRACTABLE until its
    restore test, whose last step activates the live token and clears it there, for good."""
    issuing = _steps(done["issuing-ca"].transcript)["key.generate"]["details"]
    assert issuing["backup_allowed"] is False  # type: ignore[index]
    meta = json.loads((ws / "artifacts/backups/ca-s1sp-root.wrapped.json").read_text())
    restore = read_entries(done["key-restore"].transcript)
    steps = [e["step"] for e in restore if e.get("event") == "step"]
    assert steps[-2:] == ["token.activate", "key.forbid_export"]
    activation = _steps(done["key-restore"].transcript)["token.activate"]["details"]
    assert activation["token"] == "s1sp-ca-token"  # type: ignore[index]
    forbidden = _steps(done["key-restore"].transcript)["key.forbid_export"]
    details: dict[str, object] = forbidden["details"]  # type: ignore[assignment]
    assert forbidden["result"] == "ok" and details["token"] == "s1sp-ca-token"
    attributes: dict[str, object] = details["attributes"]  # type: ignore[assignment]
    assert attributes["LABEL"] == "ca-s1sp-root"
    unwrap = _steps(done["key-restore"].transcript)["key.unwrap"]["details"]
    opened = Workspace.open(ws)
    try:
        live = opened.key_store.attributes("ca-s1sp-root")
        if key_store_kind == "pkcs11":
            assert issuing["attributes"]["EXTRACTABLE"] is False  # type: ignore[index]
            assert issuing["attributes"]["NEVER_EXTRACTABLE"] is True  # type: ignore[index]
            assert details["before"]["EXTRACTABLE"] is True  # type: ignore[index]
            assert (attributes["EXTRACTABLE"], attributes["SENSITIVE"], attributes["MODIFIABLE"]) == (False, True, True)
            assert attributes["ID"] == live.key_id and not live.extractable
            assert details["export_check"] == "ok"
            assert meta["wrap_mechanism"] == unwrap["wrap_mechanism"] == "0x210A"  # type: ignore[index]
            assert meta["padded_to_multiple_of"] == 8
        else:  # honest: a software key cannot be made non-extractable
            assert attributes["EXTRACTABLE"] is True and live.extractable
            assert str(details["export_check"]).startswith("not applicable: a software key stays on disk")
            assert meta["wrap_mechanism"] is None and meta["padding"] == "not applicable"
    finally:
        opened.close()


def _check_ceremonies_on_record(root: Path, done: dict[str, procedures.Outcome]) -> None:
    """The store holds each sealed ceremony and its transcript entries, hash for hash."""
    ws = Workspace.open(root)
    rows = {r.ceremony_id: r for r in ws.inventory._execute("SELECT * FROM ceremonies")}
    assert set(rows) == {o.ceremony_id for o in done.values()}
    for outcome in done.values():
        row, entries = rows[outcome.ceremony_id], read_entries(outcome.transcript)
        assert (row.type, row.entries, row.seal_words) == (outcome.type, len(entries), outcome.words)
        assert row.transcript_sha256 == hashlib.sha256(outcome.transcript.read_bytes()).hexdigest()
        stored = ws.inventory._execute(
            "SELECT seq, event, hash FROM transcript_entries WHERE ceremony_id = ? ORDER BY seq", (outcome.ceremony_id,)
        ).fetchall()
        assert [tuple(r) for r in stored] == [(e["seq"], e["event"], e["hash"]) for e in entries]
    # The key inventory tells the same story: generated, restored onto the test token, destroyed there.
    keys = ws.inventory._execute("SELECT token, label, purpose, origin, state, ceremony_id FROM asymmetric_keys")
    assert sorted(tuple(r) for r in keys) == sorted([
        ("s1sp-ca-token", "ceremony-seal", "seal", "generated", "active", "token-init-2026-12"),
        ("s1sp-ca-token", "ca-s1sp-root", "ca", "generated", "active", "root-ca-2026-12"),
        ("s1sp-ca-token", "ca-s1sp-issuing", "ca", "generated", "active", "issuing-ca-2026-12"),
        ("s1sp-restore-token", "ceremony-seal", "seal", "generated", "active", "key-restore-2026-12"),
        ("s1sp-restore-token", "ca-s1sp-root", "ca", "unwrapped", "destroyed", "key-restore-2026-12"),
    ])  # fmt: skip
    ws.close()


def _root_transcript(tmp_path: Path) -> Path:
    ws = live_workspace(tmp_path / "ws", "software")
    return run_examples(ws, "root-ca")["root-ca"].transcript


def _rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("edit", "line 3: hash does not match its content"),
        ("delete", "line 3: sequence 4 after 2"),
        ("insert", "line 3: sequence 2 after 2"),
        ("reorder", "line 3: sequence 4 after 2"),
        ("truncate-seal", "truncated: sealed with"),
        ("truncate-middle", "truncated: sealed with"),
        # on its file's date (the suite's pinned day): start, the software-store deviation, 5 steps, seal = 8 lines
        ("append", "line 9: entries after the seal"),
    ],
)
def test_tampering_with_a_real_sealed_transcript_is_detected(tmp_path: Path, tamper: str, expected: str) -> None:
    path = _root_transcript(tmp_path)
    lines = path.read_text().splitlines()
    assert verify_transcript(path).ok
    if tamper == "edit":
        entry = json.loads(lines[2])
        entry["actors"] = ["mallory"]
        lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    elif tamper == "delete":
        del lines[2]
    elif tamper == "insert":
        lines.insert(2, lines[1])
    elif tamper == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif tamper == "truncate-seal":
        lines = lines[:-1]
    elif tamper == "truncate-middle":
        lines = lines[:4]
    if tamper == "append":  # a well-formed entry chained on after the seal
        Journal(path).append(Step(step="key.export", action="after the fact", actors=[], inputs={}, outputs={},
                                  result="ok"))  # fmt: skip
    else:
        _rewrite(path, lines)
    report = verify_transcript(path)
    assert not report.ok and expected in report.message, report.message
    assert main(["transcript", "verify", str(path)]) == 1


def test_an_interrupted_ceremony_is_intact_but_not_sealed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    approve(ws, CEREMONIES / "root-ca.yaml")
    ceremony = procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    ceremony.step("activate")
    ceremony.step("generate-key")
    (row,) = ceremony.ws.inventory._execute("SELECT ceremony_id, sealed_at FROM ceremonies WHERE type = 'root-ca'")
    assert row.sealed_at is None  # on record as started, never sealed
    ceremony.ws.close()  # the power goes
    path = ceremony.transcript.path
    assert main(["transcript", "verify", str(path)]) == 1
    assert "intact but not sealed (interrupted after step key.generate)" in capsys.readouterr().out


def test_steps_run_in_script_order_and_a_ceremony_id_is_used_once(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    approve(ws, CEREMONIES / "root-ca.yaml")
    ceremony = procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    with pytest.raises(StateError, match="step 'generate-key' is out of order; the next step is activate"):
        ceremony.step("generate-key")
    with pytest.raises(StateError, match="cannot seal: steps not run: activate, generate-key"):
        ceremony.finish()
    ceremony.ws.close()
    with pytest.raises(StateError, match="already exists; a ceremony id is used once"):
        procedures.begin(CEREMONIES / "root-ca.yaml", ws)


def test_an_unapproved_live_run_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    approve(ws, CEREMONIES / "token-init.yaml", by=("alice",))
    with pytest.raises(InputError, match=r"token-init.yaml: 1 of 2 approvals .*\(alice\); run `ceremony approve"):
        procedures.run(CEREMONIES / "token-init.yaml", ws)
    assert list((ws / "transcripts").iterdir()) == []


def test_preflight_refusals_happen_before_anything_is_written(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    path = variant(tmp_path / "files", "token-init.yaml", {"participants.witnesses": ["bob"]})
    with pytest.raises(ConfigError, match=r"participants.witnesses\[0\]: bob is not registered for the witness role"):
        procedures.run(path, ws)
    path = variant(tmp_path / "files", "token-init.yaml", {"quorum": {"m": 4, "n": 3}}, as_name="q.yaml")
    with pytest.raises(ConfigError, match="quorum.m: 4 of 3 is impossible"):
        procedures.run(path, ws)
    assert list((ws / "transcripts").iterdir()) == []
    run_examples(ws, "token-init")
    path = variant(tmp_path / "files", "root-ca.yaml", {"outputs.certificate": "root.pem"})
    approve(ws, path)
    with pytest.raises(ConfigError, match="outputs.certificate: this ceremony writes artifacts/cas/s1sp-root.pem"):
        procedures.run(path, ws)
    path = variant(tmp_path / "files", "root-ca.yaml", {"outputs.crl": "x.crl"}, as_name="crl.yaml")
    approve(ws, path)
    with pytest.raises(ConfigError, match="outputs.crl: a root-ca ceremony writes certificate, fingerprint_statement"):
        procedures.run(path, ws)
    assert [p.name for p in (ws / "transcripts").glob("*.jsonl")] == ["token-init-2026-12.jsonl"]


def _cards(ws: Path, ceremony_id: str, purpose: str) -> dict[str, str]:
    return {
        p.name.split(".")[-2]: read_share_card(p)
        for p in sorted((ws / "share-cards").glob(f"{ceremony_id}.{purpose}.*"))
    }


@pytest.mark.parametrize(
    "m, custodians", [(2, ["carol", "dave", "erin"]), (3, ["carol", "dave", "erin", "frank", "grace"])]
)
def test_restore_from_every_quorum_of_backup_shares(
    tmp_path: Path, key_store_kind: str, m: int, custodians: list[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "issuing-ca")
    people = {
        "participants.custodians": custodians,
        "quorum": {"m": m, "n": len(custodians)},
        "bags.share_cards": {c: f"TEB-{c}" for c in custodians},
    }
    run(ws, variant(tmp_path / "files", "key-backup.yaml", people))
    kek = _cards(ws, "key-backup-2026-12", "ca-s1sp-root.kek")
    assert sorted(kek) == sorted(custodians)
    subsets = list(combinations(custodians, m))
    assert len(subsets) == {2: 3, 3: 10}[m]
    for i, subset in enumerate(subsets):
        path = variant(
            tmp_path / "files",
            "key-restore.yaml",
            {**people, "ceremony_id": f"restore-{i}", "token.label": f"restore-{i}", "bags.tokens": {}},
            as_name=f"restore-{i}.yaml",
        )
        approve(ws, path)
        console = Presenting(ws, {"ca-s1sp-root.kek": [(c, kek[c]) for c in subset]})
        outcome = procedures.run(path, ws, console=console)
        assert verify_transcript(outcome.transcript).ok
        assert _steps(outcome.transcript)["key.prove"]["result"] == "ok"

    def restore_with(shares: list[tuple[str, str]], name: str) -> None:
        path = variant(
            tmp_path / "files",
            "key-restore.yaml",
            {**people, "ceremony_id": name, "token.label": name, "bags.tokens": {}},
            as_name=f"{name}.yaml",
        )
        approve(ws, path)
        procedures.run(path, ws, console=Presenting(ws, {"ca-s1sp-root.kek": shares}))

    with pytest.raises(CustodyError, match=f"{m - 1} distinct share\\(s\\) given; {m} are needed"):
        restore_with([(c, kek[c]) for c in custodians[: m - 1]], "too-few")
    words = kek[custodians[0]].split()
    words[2] = "zzzz"
    with pytest.raises(CustodyError, match="share 1: word 3 is not in the SLIP-39 word list") as err:
        restore_with([(custodians[0], " ".join(words)), *[(c, kek[c]) for c in custodians[1:m]]], "mistyped")
    assert kek[custodians[1]] not in str(err.value)


def test_activation_needs_m_pin_shares(tmp_path: Path, key_store_kind: str) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "root-ca")
    deposited = ws / "secrets" / "shares" / "s1sp-ca-token.user-pin"
    assert sorted(p.name for p in deposited.iterdir()) == ["carol.share", "dave.share"]  # m = 2 of 3
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in deposited.iterdir())
    opened = Workspace.open(ws)
    assert "ca-s1sp-root" in opened.key_store.labels()  # m shares: activated
    opened.close()
    (deposited / "dave.share").unlink()
    opened = Workspace.open(ws)
    with pytest.raises(CustodyError, match=r"1 distinct share\(s\) given; 2 are needed"):
        opened.key_store  # noqa: B018
    opened.close()
    # The same through a ceremony: one custodian cannot activate the token.
    path = CEREMONIES / "issuing-ca.yaml"
    approve(ws, path)
    card = _cards(ws, "token-init-2026-12", "s1sp-ca-token.user-pin")
    console = Presenting(ws, {"s1sp-ca-token.user-pin": [("carol", card["carol"])]})
    with pytest.raises(CustodyError, match="2 are needed"):
        procedures.run(path, ws, console=console)
    failed = read_entries(ws / "transcripts" / "issuing-ca-2026-12.jsonl")[-1]
    assert (failed["event"], failed["step"], failed["error"]) == ("step.failed", "activate", "CustodyError")
    assert failed["message"] == "1 distinct share(s) given; 2 are needed"
    assert "interrupted after step none" in verify_transcript(ws / "transcripts" / "issuing-ca-2026-12.jsonl").message
    # ... and any other two can (erin's share was never deposited).
    path = variant(tmp_path / "files", "issuing-ca.yaml", {"ceremony_id": "issuing-ca-2"})
    approve(ws, path)
    console = Presenting(ws, {"s1sp-ca-token.user-pin": [("carol", card["carol"]), ("erin", card["erin"])]})
    assert verify_transcript(procedures.run(path, ws, console=console).transcript).ok


def test_a_destroyed_key_cannot_be_used_and_the_attempt_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "issuing-ca")
    path = variant(
        tmp_path / "files",
        "key-destruction.yaml",
        {
            "key_label": "ca-s1sp-issuing",
            "token.label": "s1sp-ca-token",
            "participants.custodians": ["carol", "dave", "erin"],
            "quorum": {"m": 2, "n": 3},
            "bags.share_cards": {"carol": "1", "dave": "2", "erin": "3"},
        },
    )
    outcome = run(ws, path)
    assert _steps(outcome.transcript)["key.destroy"]["details"]["gone"] is True  # type: ignore[index]
    from tests.support.csr_factory import good_device_csr

    csr = tmp_path / "device.csr"
    csr.write_bytes(good_device_csr()[0])
    code = main(
        ["--workspace", str(ws), "issue", "--ca", "s1sp-issuing", "--profile", "ss1sp-device", "--eui64",
         "00DB123456780001", "--usage", "ds", "--approved-by", "bob", str(csr)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "key 'ca-s1sp-issuing' on token 's1sp-ca-token' was destroyed in ceremony key-destruction-2026-12" in err
    journal = Workspace.open(ws).journal.entries()
    assert journal[-1]["event"] == "key.use_refused" and journal[-1]["key_label"] == "ca-s1sp-issuing"


def test_a_rehearsal_runs_unapproved_in_its_own_area_and_never_touches_the_live_token(
    tmp_path: Path, key_store_kind: str
) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "token-init")
    live = Workspace.open(ws)
    live_labels = live.key_store.labels()
    live.close()
    # The rehearsal area's token is another token configuration: it is used from a process of its own.
    rehearsed = in_child(procedures.run, CEREMONIES / "root-ca.yaml", ws, rehearsal=True)
    assert rehearsed.transcript == ws / "rehearsal" / "transcripts" / "root-ca-2026-12.jsonl"
    assert verify_transcript(rehearsed.transcript).ok
    entries = read_entries(rehearsed.transcript)
    assert entries[0]["rehearsal"] is True and entries[0]["approved_by"] == []
    deviations = [e["what"] for e in entries if e["event"] == "deviation"]
    assert any(d.startswith("REHEARSAL without full approval: ") for d in deviations)
    assert "REHEARSAL - NOT FOR PUBLICATION" in rehearsed.outputs["fingerprint_statement"].read_text()
    assert all(str(p).startswith(str(ws / "rehearsal")) for p in rehearsed.outputs.values())
    live = Workspace.open(ws)
    assert live.key_store.labels() == live_labels  # the live token is untouched
    assert live.inventory.ca_names() == []
    live.close()
    assert not (ws / "transcripts" / "root-ca-2026-12.jsonl").exists()
    # The live run afterwards differs from the rehearsal only where it matters.
    real = run(ws, CEREMONIES / "root-ca.yaml")
    diff = "\n".join(diff_transcripts(rehearsed.transcript, real.transcript))
    assert '"rehearsal":true' in diff and "rehearsal.token" in diff
    assert "key.generate" not in diff  # the same step, actors and attributes in both


def test_two_live_runs_of_the_same_file_have_no_difference_that_matters(tmp_path: Path) -> None:
    outcomes = []
    for name in ("a", "b"):
        ws = live_workspace(tmp_path / name, "software")
        outcomes.append(run_examples(ws, "root-ca")["root-ca"].transcript)
    assert diff_transcripts(*outcomes) == []


def test_an_attended_ceremony_waits_for_named_confirmations_and_typed_shares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    approve(ws, CEREMONIES / "token-init.yaml")
    typed: list[str] = []
    answers = iter(["mallory", "alice"])  # only the administrator may confirm initialisation

    def fake_input(prompt: str) -> str:
        return next(answers)

    def fake_getpass(prompt: str) -> str:
        custodian = prompt.split(",")[0].strip()
        card = next((ws / "share-cards").glob(f"token-init-2026-12.s1sp-ca-token.*-pin.{custodian}.txt"))
        # Typed back in the order the cards were handed out: the user PIN's cards first, then the SO PIN's.
        cards = sorted(
            (ws / "share-cards").glob(f"token-init-2026-12.*.{custodian}.txt"), key=lambda p: "so-pin" in p.name
        )
        words = read_share_card(cards[sum(1 for t in typed if t == custodian) % len(cards)])
        typed.append(custodian)
        assert card.exists()
        return words

    monkeypatch.setattr(builtins, "input", fake_input)
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    outcome = procedures.run(CEREMONIES / "token-init.yaml", ws, console=Attended())
    entry = _steps(outcome.transcript)["token.initialise"]
    assert entry["details"]["confirmed_by"] == "alice"  # type: ignore[index]
    pins = entry["details"]["s1sp-ca-token.user-pin"]  # type: ignore[index]
    assert pins["acknowledged"] == {c: "re-entered and confirmed" for c in ("carol", "dave", "erin")}
    assert pins["deposited"] is None  # attended: nothing rests in secrets/
    assert "'mallory' may not confirm this step" in capsys.readouterr().out
    assert not (ws / "secrets" / "shares").exists()


def test_a_ca_ceremony_on_another_token_than_the_workspaces_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    assert (
        main(
            [
                "--workspace",
                str(ws),
                "init",
                "--key-store",
                "software",
                "--no-token",
                "--token-label",
                "other",
                "--purpose",
                "test",
            ]
        )  # fmt: skip
        == 0
    )
    assert "token 'other' awaits its token-initialisation ceremony" in capsys.readouterr().out
    write_register(ws)
    approve(ws, CEREMONIES / "token-init.yaml")
    with pytest.raises(ConfigError) as refused:  # issue K: token-init no longer initialises any label it is given
        procedures.run(CEREMONIES / "token-init.yaml", ws)
    assert refused.value.message == (
        f"{CEREMONIES / 'token-init.yaml'}: token.label: this workspace's ceremonies initialise token 'other' "
        "(workspace.yaml key_store.token_label), not 's1sp-ca-token'; correct the file and have it approved again"
    )
    assert list((ws / "transcripts").iterdir()) == [] and not (ws / "secrets" / "keys-s1sp-ca-token").exists()
    run(ws, variant(tmp_path / "files", "token-init.yaml", {"token.label": "other", "bags.tokens": {}}))
    approve(ws, CEREMONIES / "root-ca.yaml")
    with pytest.raises(ConfigError, match="token.label: this workspace's CA keys live on token 'other'"):
        procedures.run(CEREMONIES / "root-ca.yaml", ws)


def _token_labels(root: Path) -> set[str]:
    from ceremony.keys.pkcs11 import object_labels

    ws = Workspace.open(root)
    try:
        assert ws.config.key_store.module is not None
        return object_labels(ws.config.key_store.module, "s1sp-ca-token", ws.softhsm_conf)
    finally:
        ws.close()


def _token_init_of_another_label(other: Path) -> str:
    """token-init of s1sp-ca-token in a workspace whose token is 'other': the refusal, and nothing on a token."""
    init = ["--workspace", str(other), "init", "--key-store", "pkcs11", "--no-token", "--token-label", "other"]
    assert main([*init, "--purpose", "test"]) == 0
    write_register(other)
    approve(other, CEREMONIES / "token-init.yaml")
    with pytest.raises(ConfigError) as refused:
        procedures.run(CEREMONIES / "token-init.yaml", other)
    assert not (other / "transcripts" / "token-init-2026-12.jsonl").exists()
    opened = Workspace.open(other)
    assert not opened.token_exists("s1sp-ca-token") and not opened.token_exists("other")
    opened.close()
    return refused.value.message


@pytest.mark.hsm
def test_preflight_refuses_what_a_step_would_refuse_before_anything_touches_the_token(tmp_path: Path) -> None:
    """Issue K: validity 9999, and a key label already on the token, failed only once the live run was past key
    generation; token-init initialised whatever label its file named."""
    # Another workspace is another token configuration: its part runs in a process of its own.
    assert in_child(_token_init_of_another_label, tmp_path / "other") == (
        f"{CEREMONIES / 'token-init.yaml'}: token.label: this workspace's ceremonies initialise token 'other' "
        "(workspace.yaml key_store.token_label), not 's1sp-ca-token'; correct the file and have it approved again"
    )

    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "token-init")
    before = _token_labels(ws)
    path = variant(tmp_path / "files", "root-ca.yaml", {"naming.validity_days": 9999})
    approve(ws, path)  # journalled directly: `ceremony approve` itself now refuses the file
    with pytest.raises(ConfigError, match="naming.validity_days: validity of 9999 days exceeds profile ss1spca-root"):
        procedures.begin(path, ws)
    assert _token_labels(ws) == before == {"ceremony-seal"}
    assert not (ws / "transcripts" / "root-ca-2026-12.jsonl").exists()

    opened = Workspace.open(ws)
    opened.key_store.generate("ca-s1sp-root", "ec-p256")  # a key under the file's label, by whatever means
    opened.close()
    approve(ws, CEREMONIES / "root-ca.yaml")
    with pytest.raises(StateError) as refused:
        procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    assert refused.value.message == (
        f"{CEREMONIES / 'root-ca.yaml'}: key.label: token 's1sp-ca-token' already holds a key labelled "
        "'ca-s1sp-root'; give the key another label"
    )
    assert not (ws / "transcripts" / "root-ca-2026-12.jsonl").exists()
