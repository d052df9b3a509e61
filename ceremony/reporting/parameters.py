"""Notebook parameters (literals: None, strings) as the values the package takes: a workspace, paths."""

from __future__ import annotations

from pathlib import Path

from ceremony.errors import InputError
from ceremony.record.workspace import Workspace, default_workspace


def open_workspace(workspace: str | Path | None) -> Workspace:
    """The workspace a notebook's ``workspace`` parameter names (None: $CEREMONY_WORKSPACE or ./workspace).

    A demo, rehearsal or test workspace says so in the notebook's output, first thing."""
    ws = Workspace.open(Path(workspace) if workspace else default_workspace())
    if ws.mark is not None:
        print(f"{ws.mark}: {ws.root}")
    return ws


def required_path(name: str, value: str | Path | None, what: str) -> Path:
    """The path parameter ``name``, which must be set: unset, a one-line :class:`InputError` names it.

    Args:
        name: the parameter's name as the notebook declares it.
        value: its value (None or an empty string when it was not given).
        what: what the path is, for the message (``"the approved device list (CSV)"``).
    """
    if value is None or not str(value).strip():
        raise InputError(f"parameter {name} is required: {what} (e.g. -p {name} PATH)")
    return Path(value)


def optional_path(value: str | Path | None) -> Path | None:
    """A path parameter that may be left unset (None or an empty string)."""
    return Path(value) if value is not None and str(value).strip() else None
