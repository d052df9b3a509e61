"""Strict YAML: duplicate keys, empty documents, unknown keys and dates are errors or strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import ConfigError
from ceremony.model.config import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, load_model, load_yaml
from ceremony.record.workspace import WorkspaceConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    return path


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate key 'a' at line 2, column 1$"):
        load_yaml(_write(tmp_path, "a: 1\na: 2\n"))
    with pytest.raises(ConfigError, match="duplicate key 'b' at line 3, column 3$"):
        load_yaml(_write(tmp_path, "a:\n  b: 1\n  b: 2\n"))


def test_empty_document_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty document"):
        load_yaml(_write(tmp_path, "# nothing\n"))


def test_dates_stay_strings(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "when: 2026-11-24\n")) == {"when": "2026-11-24"}


def test_unknown_key_names_the_field_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "schema_version: 1\ncreated: x\nkey_store: {kind: software, colour: red}\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == (
        f"{path}: key_store.colour is not a field; allowed: kind, module, token_label, wrap_mechanism, softhsm_conf "
        "(line 3)"
    )


def test_wrong_value_names_allowed_values(tmp_path: Path) -> None:
    path = _write(tmp_path, "schema_version: 1\ncreated: x\nkey_store: {kind: hsm}\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: key_store.kind must be one of 'pkcs11', 'software' (got 'hsm') (line 3)"


# --- bounded input (DESIGN principle 9) ------------------------------------------------------------------------
def test_aliases_are_allowed_but_counted_in_full(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "a: &x [1, 2]\nb: *x\n")) == {"a": [1, 2], "b": [1, 2]}
    laughs = "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 7)
    )
    path = _write(tmp_path, laughs)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert (
        err.value.message == f"{path}: line 5, column 45: more than {MAX_YAML_NODES} values (aliases counted in full)"
    )


def test_nesting_is_bounded_before_construction(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "a: " + "[" * 63 + "]" * 63 + "\n"))  # 64 levels with the top mapping
    for text in ("a: " + "[" * 64 + "]" * 64 + "\n", "[" * 50_000 + "]" * 50_000, "{a: " * 50_000 + "}" * 50_000):
        path = _write(tmp_path, text)
        with pytest.raises(ConfigError) as err:
            load_yaml(path)
        assert err.value.message.startswith(f"{path}: line 1, column ")
        assert err.value.message.endswith(f": nested more than {MAX_YAML_DEPTH} levels deep")


def test_an_alias_cannot_nest_deeper_than_the_bound(tmp_path: Path) -> None:
    text = "a: &x " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*x" + "]" * 30 + "\n"
    with pytest.raises(ConfigError, match="line 2, column 34: nested more than 64 levels deep"):
        load_yaml(_write(tmp_path, text))


def test_a_file_over_the_cap_or_not_regular_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(MAX_YAML_BYTES + 1)
    with pytest.raises(ConfigError, match=rf"big\.yaml: the YAML file is {MAX_YAML_BYTES + 1} bytes; the limit is"):
        load_yaml(big)
    with pytest.raises(ConfigError, match="the YAML file must be a regular file"):
        load_yaml(Path("/dev/zero"))
    with pytest.raises(ConfigError, match=r"f\.yaml: the YAML file is 8 bytes; the limit is 4"):
        load_yaml(_write(tmp_path, "a: 1\n# \n"), limit=4)


def test_a_model_declares_its_own_cap_and_kind(tmp_path: Path) -> None:
    from typing import ClassVar

    from ceremony.model.config import Strict

    class Small(Strict):
        max_file_bytes: ClassVar[int] = 8
        file_kind: ClassVar[str] = "small file"
        a: int

    assert load_model(Small, _write(tmp_path, "a: 1\n")).a == 1
    with pytest.raises(ConfigError, match="the small file is 12 bytes; the limit is 8"):
        load_model(Small, _write(tmp_path, "a: 12345678\n"))


def test_not_utf8_and_syntax_errors_name_the_place_not_the_text(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes("a: 1\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0 cannot be decoded\)"):
        load_yaml(path)
    with pytest.raises(ConfigError) as err:
        load_yaml(_write(tmp_path, "a: 1\nsecret-looking: [unclosed\n"))
    assert "not valid YAML at line 3, column 1 (" in err.value.message and "unclosed" not in err.value.message


def test_a_rejected_value_is_abridged_not_expanded(tmp_path: Path) -> None:
    path = _write(tmp_path, "schema_version: 1\ncreated: x\nkey_store: {kind: " + "h" * 5000 + "}\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert len(err.value.message) < len(str(path)) + 160 and err.value.message.endswith("...) (line 3)")
    path = _write(tmp_path, "- " + "\n- ".join(["x"] * 1000) + "\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: (document) must be a mapping (got list)"


# --- where a field's error is (issue K) -----------------------------------------------------------------------
def test_a_field_error_names_its_line(tmp_path: Path) -> None:
    text = "schema_version: 1\ncreated: x\n# the key store\nkey_store:\n  kind: software\n  module: 12\n"
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: key_store.module: Input should be a valid string (got 12) (line 6)"
    path = _write(tmp_path, "schema_version: 1\nkey_store:\n  kind: software\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: created is required"  # a missing top-level key: no line to name
    path = _write(tmp_path, "schema_version: 1\ncreated: x\nkey_store: {kind: software}\nprofile_sets: [a, 7]\n")
    with pytest.raises(ConfigError) as err:
        load_model(WorkspaceConfig, path)
    assert err.value.message == f"{path}: profile_sets.1: Input should be a valid string (got 7) (line 4)"


def test_without_lines_a_field_error_is_as_before() -> None:
    from ceremony.model.config import parse_model

    with pytest.raises(ConfigError) as err:
        parse_model(WorkspaceConfig, {"schema_version": 1, "created": "x", "key_store": {"kind": "hsm"}}, "w.yaml")
    assert err.value.message == "w.yaml: key_store.kind must be one of 'pkcs11', 'software' (got 'hsm')"


def test_a_misspelt_key_is_reported_first_with_the_field_it_meant(tmp_path: Path) -> None:
    """``quorom:`` was reported as ``quorum is required (and 1 more)``: the misspelling is the mistake."""
    from ceremony.model.ceremony_file import load_ceremony
    from ceremony.model.config import data_dir

    text = (data_dir() / "ceremonies" / "root-ca.yaml").read_text()
    assert "\nquorum: {m: 2, n: 3}\n" in text
    path = _write(tmp_path, text.replace("\nquorum: {m: 2, n: 3}\n", "\nquorom: {m: 2, n: 3}\n"))
    with pytest.raises(ConfigError) as err:
        load_ceremony(path)
    line = text.splitlines().index("quorum: {m: 2, n: 3}") + 1
    assert err.value.message.startswith(f"{path}: quorom is not a field (did you mean quorum?); allowed: ")
    assert err.value.message.endswith(f", quorum, token, key, naming (line {line})")  # no "(and 1 more)"
    path = _write(tmp_path, text.replace("quorum: {m: 2, n: 3}", "quorum: {m: 2, nn: 3}"))
    with pytest.raises(ConfigError) as err:
        load_ceremony(path)
    assert err.value.message == f"{path}: quorum.nn is not a field (did you mean n?); allowed: m, n (line {line})"
    path = _write(tmp_path, text.replace("\nquorum: {m: 2, n: 3}\n", "\nquorum: {m: 2, n: 3}\ncolour: red\n"))
    with pytest.raises(ConfigError) as err:
        load_ceremony(path)
    assert err.value.message.startswith(f"{path}: colour is not a field; allowed: schema_version, ")
    assert err.value.message.endswith(f" (line {line + 1})")


def test_syntax_errors_name_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb: [1,\n  2\nc: {x: 1\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert err.value.message.startswith(f"{path}: not valid YAML at line 4, column 2 (")
