"""Ceremony files and the pre-flight: strict models, register and policy rules, approvals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ceremony.cli.main import main
from ceremony.errors import ConfigError, InputError
from ceremony.model.ceremony_file import CEREMONY_TYPES, load_ceremony, preflight, require_approvals
from ceremony.model.people import load_register
from ceremony.model.policy import load_policy
from ceremony.record.workspace import init_workspace

DATA = Path(__file__).resolve().parents[2] / "data"
EXAMPLES = sorted((DATA / "ceremonies").glob("*.yaml"))


def _variant(tmp_path: Path, name: str, change: dict[str, object]) -> Path:
    data = yaml.safe_load((DATA / "ceremonies" / name).read_text())
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _preflight(path: Path) -> None:
    preflight(load_ceremony(path), load_register(DATA / "people.yaml"), load_policy())


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_ceremony_file_passes_preflight(path: Path) -> None:
    _preflight(path)


def test_every_ceremony_type_has_an_example() -> None:
    # Every ceremony type has its shipped example, and every example is of a known type.
    assert {load_ceremony(p).spec.type for p in EXAMPLES} == set(CEREMONY_TYPES)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"participants.witnesses": ["bob"]}, "participants.witnesses[0]: bob is not registered for the witness role"),
        (
            {"participants.witnesses": ["alice"]},
            "participants.witnesses[0]: alice is not registered for the witness role",
        ),
        (
            {"participants.custodians": ["carol", "carol", "erin"]},
            "participants.custodians[1]: carol would hold two shares",
        ),
        (
            {"date": "2027-10-15"},
            "participants.administrator: alice's training expired 2027-09-30 (ceremony date 2027-10-15)",
        ),
        ({"quorum": {"m": 4, "n": 3}}, "quorum.m: 4 of 3 is impossible"),
        ({"quorum": {"m": 2, "n": 4}}, "quorum.n: 4 shares but 3 custodians"),
        ({"quorum": {"m": 1, "n": 3}}, "quorum: policy allows m >= 2"),
        (
            {"participants.custodians": ["carol", "carol2", "erin"]},
            "participants.custodians[1]: 'carol2' is not in the",
        ),
        (
            {"participants.operators": ["carol"]},
            "participants.operators[0]: carol is not registered for the operator role",
        ),
        ({"bags.share_cards": {"carol": "TEB-1", "dave": "TEB-2"}}, "bags.share_cards: no tamper-evident bag for erin"),
    ],
)
def test_preflight_refusals_name_the_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _preflight(_variant(tmp_path, "root-ca.yaml", change))
    assert message in err.value.message


def test_a_witness_in_an_operational_role_is_refused(tmp_path: Path) -> None:
    register = yaml.safe_load((DATA / "people.yaml").read_text())
    register["people"]["wendy"]["roles"].append("operator")
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(register))
    path = _variant(tmp_path, "root-ca.yaml", {"participants.operators": ["wendy"]})
    with pytest.raises(
        ConfigError,
        match=r"participants.witnesses\[0\]: wendy is also participants.operators\[0\]; "
        "a witness holds no other role",
    ):
        preflight(load_ceremony(path), load_register(tmp_path / "people.yaml"), load_policy())


def test_custodians_from_one_organisation_are_refused(tmp_path: Path) -> None:
    path = _variant(
        tmp_path,
        "key-backup.yaml",
        {
            "participants.custodians": ["dave", "frank", "erin"],
            "quorum": {"m": 2, "n": 3},
            "bags.share_cards": {"dave": "1", "frank": "2", "erin": "3"},
        },
    )
    _preflight(path)  # S1SP + DCO: fine
    register = yaml.safe_load((DATA / "people.yaml").read_text())
    register["people"]["erin"]["organisation"] = "S1SP"
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(register))
    with pytest.raises(ConfigError, match="all from S1SP; policy requires custodians from at least 2 organisations"):
        preflight(load_ceremony(path), load_register(tmp_path / "people.yaml"), load_policy())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"key.algorithm": "ec-p521"}, "key.algorithm must be one of 'ec-p256', 'ec-p384', 'rsa-3072' (got 'ec-p521')"),
        ({"token.colour": "red"}, "token.colour is not a field; allowed: module, label, wrap_mechanism (line 23)"),
        (
            {"type": "party"},
            f"type must be one of {', '.join(CEREMONY_TYPES)} (got 'party')",
        ),
        ({"date": "1 Dec 2026"}, "date: must be a date YYYY-MM-DD"),
    ],
)
def test_strict_models_name_the_field_and_allowed_values(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_ceremony(_variant(tmp_path, "root-ca.yaml", change))
    assert message in err.value.message


def test_live_run_needs_approvals_and_a_rehearsal_says_so(tmp_path: Path) -> None:
    ceremony = load_ceremony(DATA / "ceremonies" / "root-ca.yaml")
    policy = load_policy()
    with pytest.raises(InputError, match="1 of 2 approvals .* \\(alice\\); run `ceremony approve"):
        require_approvals(ceremony, ["alice"], policy, rehearsal=False)
    note = require_approvals(ceremony, ["alice"], policy, rehearsal=True)
    assert note is not None and note.startswith("REHEARSAL without full approval")
    assert require_approvals(ceremony, ["alice", "victor"], policy, rehearsal=False) is None


@pytest.mark.parametrize(
    "name, change, message",
    [
        (
            "root-ca.yaml",
            {"naming.validity_days": 9999},
            "naming.validity_days: validity of 9999 days exceeds profile ss1spca-root's maximum of 9131; correct the "
            "file and have it approved again",
        ),
        (
            "issuing-ca.yaml",
            {"naming.validity_days": 99999},
            "naming.validity_days: validity of 99999 days exceeds profile ss1spca-issuing's maximum of",
        ),
        (
            "root-ca.yaml",
            {"naming.profile": "ss1spca-issuing"},
            "naming.profile: ss1spca-issuing is for issuing-ca certificates; a root-ca ceremony issues under a "
            "root-ca profile; correct the file and have it approved again",
        ),
        ("root-ca.yaml", {"naming.profile": "no-such"}, "naming.profile: unknown profile 'no-such'; known: "),
        (
            "root-ca.yaml",
            {"key.algorithm": "rsa-3072"},
            "key.algorithm: profile ss1spca-root allows ec-p256, ec-p384 (got rsa-3072); correct the file and have it "
            "approved again",
        ),
    ],
)
def test_preflight_asks_what_the_certificate_step_will_ask_of_the_file(
    tmp_path: Path, name: str, change: dict[str, object], message: str
) -> None:
    """Issue K: validity 9999 passed approval and pre-flight, and the live run generated the key before step 3
    refused it. The profile's own rules (ceremony.model.tbs) now refuse it when the file is checked."""
    path = _variant(tmp_path, name, change)
    with pytest.raises(ConfigError) as err:
        _preflight(path)
    assert err.value.message.startswith(f"{path}: {message}")


def test_approve_refuses_a_validity_the_profile_does_not_allow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init_workspace(tmp_path / "ws", key_store="software", purpose="test").close()
    shutil.copy(DATA / "people.yaml", tmp_path / "ws" / "people.yaml")
    path = _variant(tmp_path, "root-ca.yaml", {"naming.validity_days": 9999})
    assert main(["--workspace", str(tmp_path / "ws"), "approve", str(path), "--by", "alice"]) == 2
    assert capsys.readouterr().err == (
        f"ceremony: {path}: naming.validity_days: validity of 9999 days exceeds profile ss1spca-root's maximum of "
        "9131; correct the file and have it approved again\n"
    )
    assert "ceremony.approve" not in (tmp_path / "ws" / "journal.jsonl").read_text()


def test_approve_records_the_hash_in_the_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    ws.close()
    shutil.copy(DATA / "people.yaml", tmp_path / "ws" / "people.yaml")  # the workspace's own register
    path = tmp_path / "root-ca.yaml"
    shutil.copy(DATA / "ceremonies" / "root-ca.yaml", path)
    base = ["--workspace", str(tmp_path / "ws"), "approve", str(path)]
    assert main([*base, "--by", "alice"]) == 0
    assert "1 of 2 approvals" in capsys.readouterr().out
    assert main([*base, "--by", "alice"]) == 2
    assert "alice has already approved" in capsys.readouterr().err
    assert main([*base, "--by", "bob"]) == 2
    assert "bob is not registered for the approver role" in capsys.readouterr().err
    assert main([*base, "--by", "victor"]) == 0
    assert "2 of 2 approvals" in capsys.readouterr().out
    path.write_text(path.read_text() + "# edited after approval\n")
    from ceremony.model.ceremony_file import approvals
    from ceremony.record.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    assert approvals(ws.journal.entries(), load_ceremony(path).sha256) == []  # an edit voids the approvals
    ws.close()


def test_expired_vetting_is_refused(tmp_path: Path) -> None:
    register = yaml.safe_load((DATA / "people.yaml").read_text())
    register["people"]["dave"]["vetting_expires"] = "2026-11-30"
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(register))
    with pytest.raises(
        ConfigError,
        match=r"participants.custodians\[1\]: dave's vetting expired 2026-11-30 "
        r"\(ceremony date 2026-12-01\)",
    ):
        preflight(
            load_ceremony(DATA / "ceremonies" / "root-ca.yaml"), load_register(tmp_path / "people.yaml"), load_policy()
        )


def test_approval_refuses_a_file_naming_another_token_than_the_workspaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue K: a token-init file naming another label was approved, then refused only when it ran."""
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    assert ws.token_label == "s1sp-ca-token"
    ws.close()
    shutil.copy(DATA / "people.yaml", tmp_path / "ws" / "people.yaml")
    path = _variant(tmp_path, "token-init.yaml", {"token.label": "other-token"})
    assert main(["--workspace", str(tmp_path / "ws"), "approve", str(path), "--by", "alice"]) == 2
    assert capsys.readouterr().err == (
        f"ceremony: {path}: token.label: this workspace's ceremonies use token 's1sp-ca-token' "
        "(workspace.yaml key_store.token_label), not 'other-token'; correct the file and have it approved\n"
    )
    assert "ceremony.approve" not in (tmp_path / "ws" / "journal.jsonl").read_text()


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("pin-change.yaml", {"pins": ["user", "user"]}, "pins: a PIN appears twice"),
        ("pin-change.yaml", {"pins": []}, "pins: List should have at least 1 item"),
        ("pin-change.yaml", {"pins": ["admin"]}, "pins.0 must be one of 'user', 'so' (got 'admin')"),
        (
            "pin-change.yaml",
            {"leaving": ["carol"]},
            "leaving[0]: carol leaves, so is not among participants.custodians",
        ),
        (
            "user-pin-reset.yaml",
            {"leaving": ["dave"]},
            "leaving[0]: dave leaves, so is not among participants.custodians",
        ),
        ("user-pin-reset.yaml", {"reason": "lost"}, "reason"),
    ],
)
def test_pin_ceremony_files_are_strict(tmp_path: Path, name: str, change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_ceremony(_variant(tmp_path, name, change))
    assert message in err.value.message


def test_a_person_who_left_holds_no_seat_from_that_day(tmp_path: Path) -> None:
    register = yaml.safe_load((DATA / "people.yaml").read_text())
    register["people"]["erin"]["left"] = "2026-12-01"  # the root-ca example's own date
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(register))
    path = _variant(tmp_path, "root-ca.yaml", {})
    with pytest.raises(ConfigError) as err:
        preflight(load_ceremony(path), load_register(tmp_path / "people.yaml"), load_policy())
    assert err.value.message.endswith(
        "participants.custodians[2]: erin left the PKI on 2026-12-01 (ceremony date 2026-12-01)"
    )
    register["people"]["erin"]["left"] = "2026-12-02"  # leaving tomorrow: still seated today
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(register))
    preflight(load_ceremony(path), load_register(tmp_path / "people.yaml"), load_policy())
