"""Strict YAML: duplicate keys, empty documents, unknown keys and dates are errors or strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import ConfigError
from ceremony.model.config import load_model, load_yaml
from ceremony.record.workspace import WorkspaceConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    return path


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate key 'a' at line 2"):
        load_yaml(_write(tmp_path, "a: 1\na: 2\n"))


def test_empty_document_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty document"):
        load_yaml(_write(tmp_path, "# nothing\n"))


def test_dates_stay_strings(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "when: 2026-11-24\n")) == {"when": "2026-11-24"}


def test_unknown_key_names_the_field_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "schema_version: 1\ncreated: x\nkey_store: {kind: software, colour: red}\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: key_store.colour is not an allowed key"


def test_wrong_value_names_allowed_values(tmp_path: Path) -> None:
    path = _write(tmp_path, "schema_version: 1\ncreated: x\nkey_store: {kind: hsm}\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: key_store.kind must be one of 'pkcs11', 'software' (got 'hsm')"
