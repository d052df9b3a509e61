"""The participant register is strict: ids, dates and key fingerprints are checked on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ceremony.errors import ConfigError
from ceremony.model.people import load_register

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
        ({"clearance": "SC"}, "zoe", "people.zoe.clearance is not an allowed key"),
    ],
)
def test_bad_register_entries_name_the_field(tmp_path: Path, person: dict[str, object], pid: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_register(_register(tmp_path, person, pid))
    assert message in err.value.message
