"""The registers the compliance checks read: strict schemas, and the example data loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import ConfigError
from ceremony.model.config import load_model
from ceremony.model.registers import REGISTERS, IncidentRegister, Waivers, load_registers


def test_every_example_register_loads() -> None:
    loaded = load_registers()
    assert set(loaded) == set(REGISTERS)
    assert loaded["documents"].documents[0].kind == "CP"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("model", "text", "message"),
    [
        (
            IncidentRegister,
            "incidents: [{id: I1, kind: key-compromise, summary: s, detected_at: '2026-05-01T09:30:00'}]",
            "incidents.0.detected_at: .*must carry a UTC offset",
        ),
        (
            IncidentRegister,
            "incidents: [{id: I1, kind: theft, summary: s, detected_at: '2026-05-01T09:30:00Z'}]",
            "incidents.0.kind",
        ),
        (
            Waivers,
            "waivers: [{control: XYZ-1, reason: a long enough reason, approved_by: victor, expires: '2027-01-01'}]",
            "waivers.0.control: .*control id",
        ),
        (
            Waivers,
            "waivers: [{control: CER-04, reason: short, approved_by: victor, expires: '2027-01-01'}]",
            "waivers.0.reason",
        ),
        (
            Waivers,
            "waivers: [{control: CER-04, reason: a long enough reason, approved_by: v, expires: 2027-01-01, x: 1}]",
            "waivers.0.x",
        ),
    ],
)
def test_a_malformed_register_is_refused_naming_the_field(tmp_path: Path, model: type, text: str, message: str) -> None:
    path = tmp_path / "register.yaml"
    path.write_text("schema_version: 1\n" + text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_model(model, path)


def test_an_incident_may_name_the_ca_it_compromised_and_older_registers_still_load(tmp_path: Path) -> None:
    """``ca`` (REV-05) is optional: a register written before it loads as it did; a CA name must be a string."""
    path = tmp_path / "incidents.yaml"
    path.write_text(
        "schema_version: 1\nincidents:\n"
        "  - {id: I1, kind: key-compromise, summary: s, detected_at: '2026-05-01T09:30:00Z', ca: s1sp-issuing}\n"
        "  - {id: I2, kind: other, summary: s, detected_at: '2026-05-01T09:30:00Z'}\n"
    )
    loaded = load_model(IncidentRegister, path)
    assert [i.ca for i in loaded.incidents] == ["s1sp-issuing", None]
    path.write_text(path.read_text().replace("ca: s1sp-issuing", "ca: [s1sp-issuing]"))
    with pytest.raises(ConfigError, match=r"incidents\.0\.ca: Input should be a valid string"):
        load_model(IncidentRegister, path)
