"""Notebook parameters as the package's values: a required path refused in one line, optional paths, the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import InputError
from ceremony.record.workspace import init_workspace
from ceremony.reporting.parameters import open_workspace, optional_path, required_path


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_required_path_left_unset_is_one_line_naming_the_parameter(value: str | None) -> None:
    with pytest.raises(InputError) as err:
        required_path("devices", value, "the approved device list (CSV)")
    assert err.value.message == "parameter devices is required: the approved device list (CSV) (e.g. -p devices PATH)"
    assert "\n" not in err.value.message


def test_paths_given_are_paths() -> None:
    assert required_path("devices", "fleet/list.csv", "x") == Path("fleet/list.csv")
    assert optional_path("rejects.csv") == Path("rejects.csv")
    assert optional_path(None) is None and optional_path(" ") is None


def test_the_workspace_parameter_or_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path / "ws", key_store="software", purpose="test").close()
    ws = open_workspace(str(tmp_path / "ws"))
    assert ws.root == (tmp_path / "ws").resolve()
    ws.close()
    monkeypatch.setenv("CEREMONY_WORKSPACE", str(tmp_path / "ws"))
    ws = open_workspace(None)
    assert ws.root == (tmp_path / "ws").resolve()
    ws.close()
