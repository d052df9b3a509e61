"""The control catalogue as data: control ids, the shipped catalogue's shape, and a malformed one refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ceremony.compliance.controls import CHECKS
from ceremony.errors import ConfigError
from ceremony.model.catalogue import catalogue_path, control_id, load_catalogue
from ceremony.model.config import load_yaml

PREFIX_AREA = {
    "GOV": "governance",
    "CER": "ceremony",
    "KEY": "keys",
    "CRT": "certificates",
    "REV": "revocation",
    "LOG": "logging",
    "PER": "personnel",
}


@pytest.mark.parametrize("value", ["GOV-01", "CER-04", "KEY-10", "CRT-99", "REV-00", "LOG-02", "PER-07"])
def test_control_id_accepts_an_area_prefix_and_two_digits(value: str) -> None:
    assert control_id(value) == value


@pytest.mark.parametrize("value", ["CER-4", "CER-004", "cer-04", "XYZ-01", "CER04", "CER-04 ", " CER-04", ""])
def test_control_id_refuses_anything_else_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match="must be a control id such as CER-04") as err:
        control_id(value)
    assert f"(got {value!r})" in str(err.value)


def test_the_shipped_catalogue_has_unique_ids_in_their_areas() -> None:
    catalogue = load_catalogue()
    ids = [c.id for c in catalogue.controls]
    assert len(ids) == len(set(ids)) == 49  # + GOV-05, KEY-09, CER-10 (issue I), + GOV-06, LOG-03..05 (J), CER-11 (K)
    # + GOV-07, KEY-10, REV-05 (CA compromise)
    assert {c.id: c.area for c in catalogue.controls} == {c.id: PREFIX_AREA[c.id[:3]] for c in catalogue.controls}
    assert all(c.policy_ref and c.check and c.evidence and c.applies_to for c in catalogue.controls)


def test_every_catalogued_control_has_a_registered_check() -> None:
    assert set(CHECKS) == {c.id for c in load_catalogue().controls}


def test_get_finds_a_control_by_id() -> None:
    control = load_catalogue().get("CER-02")
    assert (control.id, control.title, control.severity) == ("CER-02", "Transcript hash chain intact", "critical")


def test_the_catalogue_lives_under_the_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert catalogue_path() == Path(__file__).resolve().parents[2] / "data" / "controls" / "s1spkm.yaml"
    monkeypatch.setenv("CEREMONY_DATA", str(tmp_path))
    assert catalogue_path() == tmp_path / "controls" / "s1spkm.yaml"


def _variant(tmp_path: Path, edit: Any) -> Path:
    data = load_yaml(catalogue_path())
    edit(data)
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _duplicate(data: dict[str, Any]) -> None:
    data["controls"].append(dict(data["controls"][0]))


def _bad_area(data: dict[str, Any]) -> None:
    data["controls"][0]["area"] = "finance"


def _bad_id(data: dict[str, Any]) -> None:
    data["controls"][0]["id"] = "GOV-1"


def _no_evidence(data: dict[str, Any]) -> None:
    data["controls"][0]["evidence"] = []


def _unknown_key(data: dict[str, Any]) -> None:
    data["controls"][0]["owner"] = "alice"


def _no_controls(data: dict[str, Any]) -> None:
    data["controls"] = []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _bad_area,
            "controls.0.area must be one of 'governance', 'ceremony', 'keys', 'certificates', 'revocation', "
            "'logging', 'personnel' (got 'finance') (line 6)",
        ),
        (_bad_id, "controls.0.id: must be a control id such as CER-04 (got 'GOV-1') (line 4)"),
        (
            _no_evidence,
            "controls.0.evidence: List should have at least 1 item after validation, not 0 (got []) (line 8)",
        ),
        (
            _unknown_key,
            "controls.0.owner is not a field; allowed: id, title, area, policy_ref, evidence, check, "
            "severity, applies_to (line 16)",
        ),
        (_no_controls, "controls: List should have at least 1 item after validation, not 0 (got []) (line 3)"),
    ],
)
def test_a_malformed_catalogue_is_refused_naming_the_field(tmp_path: Path, edit: Any, message: str) -> None:
    path = _variant(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert err.value.message == f"{path}: {message}"


def test_duplicate_control_ids_are_refused_naming_them(tmp_path: Path) -> None:
    path = _variant(tmp_path, _duplicate)
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert err.value.message.startswith(f"{path}: controls: control ids must be unique (GOV-01 appear twice)")


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="bug: the duplicate-id refusal has no '(got ' in its text, so ceremony.model.config._describe appends "
    "the whole controls list (about 14 kB for the shipped catalogue) to what should be one short line",
)
def test_the_duplicate_id_refusal_is_one_short_line(tmp_path: Path) -> None:
    path = _variant(tmp_path, _duplicate)
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert err.value.message == f"{path}: controls: control ids must be unique (GOV-01 appear twice)"
