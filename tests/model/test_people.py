"""The participant register is strict: ids, dates and key fingerprints are checked on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ceremony.errors import ConfigError
from ceremony.model.people import MAX_REGISTER_BYTES, default_register, load_register

DATA = Path(__file__).resolve().parents[2] / "data"


def _register(tmp_path: Path, person: dict[str, object], pid: str = "zoe") -> Path:
    base = {
        "name": "Zoe",
        "organisation": "DCC",
        "roles": ["custodian"],
        "vetting_expires": "2027-01-01",
        "training_expires": "2027-01-01",
    }
    path = tmp_path / "people.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "people": {pid: {**base, **person}}}))
    return path


def test_example_register_loads() -> None:
    register = load_register(DATA / "people.yaml")
    assert {"alice", "wendy", "victor"} <= set(register.people)


@pytest.mark.parametrize(
    "person, pid, message",
    [
        (
            {"vetting_expires": "31/12/2027"},
            "zoe",
            "people.zoe.vetting_expires: must be a date YYYY-MM-DD",
        ),
        ({"roles": ["janitor"]}, "zoe", "people.zoe.roles.0 must be one of 'administrator'"),
        ({"attestation_key": "abc"}, "zoe", "people.zoe.attestation_key: must be sha256:"),
        ({}, "Zoe Smith", "person id 'Zoe Smith' must be lower-case"),
        ({"clearance": "SC"}, "zoe", "people.zoe.clearance is not a field; allowed: name, organisation, roles,"),
    ],
)
def test_bad_register_entries_name_the_field(tmp_path: Path, person: dict[str, object], pid: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_register(_register(tmp_path, person, pid))
    assert message in err.value.message


def test_a_workspace_without_a_register_is_an_error_never_the_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CEREMONY_REGISTER", raising=False)
    with pytest.raises(ConfigError) as err:
        default_register(tmp_path)
    assert err.value.message == f"{tmp_path / 'people.yaml'}: no participant register in this workspace"
    assert err.value.hint is not None and str(DATA / "people.yaml") in err.value.hint and "--register" in err.value.hint
    (tmp_path / "people.yaml").write_text("schema_version: 1\npeople: {}\n")
    assert default_register(tmp_path) == tmp_path / "people.yaml"
    assert default_register(None) == DATA / "people.yaml"  # outside any workspace: the example
    monkeypatch.setenv("CEREMONY_REGISTER", str(tmp_path / "elsewhere.yaml"))
    assert default_register(tmp_path) == tmp_path / "elsewhere.yaml"


def test_whatever_stands_at_the_register_path_is_refused_when_read(tmp_path: Path) -> None:
    path = tmp_path / "people.yaml"
    path.symlink_to(DATA / "people.yaml")
    with pytest.raises(ConfigError, match="cannot read the participant register"):
        load_register(path)
    path.unlink()
    with path.open("wb") as fh:
        fh.truncate(MAX_REGISTER_BYTES + 1)
    with pytest.raises(ConfigError, match=f"the participant register is {MAX_REGISTER_BYTES + 1} bytes"):
        load_register(path)


def test_a_rehearsal_area_practises_with_its_live_workspaces_register(tmp_path: Path) -> None:
    from ceremony.model.people import default_register

    live = tmp_path / "ws"
    (live / "rehearsal").mkdir(parents=True)
    (live / "people.yaml").write_text("schema_version: 1\n")
    assert default_register(live / "rehearsal") == live / "people.yaml"
    (live / "rehearsal" / "people.yaml").write_text("schema_version: 1\n")
    assert default_register(live / "rehearsal") == live / "rehearsal" / "people.yaml"  # its own, if it has one
    (tmp_path / "other" / "sub").mkdir(parents=True)
    (tmp_path / "other" / "people.yaml").write_text("schema_version: 1\n")
    with pytest.raises(ConfigError, match="no participant register in this workspace"):
        default_register(tmp_path / "other" / "sub")  # only a rehearsal area borrows its parent's
