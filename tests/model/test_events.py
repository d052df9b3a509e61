"""Events are named once (ceremony.model.events): typed records with their fields, no name as a string elsewhere."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from ceremony.model import events
from ceremony.model.events import Action, Event, Record

PACKAGE = Path(__file__).resolve().parents[2] / "ceremony"
NAMES = {e.value for e in Event} | {a.value for a in Action}
#: Bare words that are also field names ("step", "seal" ...): a literal counts only where it is compared.
BARE = {n for n in NAMES if "." not in n}


def named_literals(source: str) -> list[tuple[int, str]]:
    """(line, name) of every string literal that spells an event or step name: any dotted one, and a bare
    one where it is compared with something (``entry["event"] == "seal"``)."""
    tree = ast.parse(source)
    compared = {
        id(c)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        for side in (node.left, *node.comparators)
        for c in ([side] if isinstance(side, ast.Constant) else getattr(side, "elts", []))
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in NAMES
        and (node.value not in BARE or id(node) in compared)
    ]


def test_no_event_or_step_name_is_spelled_outside_the_events_module() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "model" / "events.py"
        for line, name in named_literals(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_walker_finds_a_planted_name() -> None:
    planted = 'journal.append("key.export", {})\nif e["event"] == "seal":\n    pass\nfields = {"step": 1}\n'
    assert named_literals(planted) == [(1, "key.export"), (2, "seal")]


def _records() -> list[type[Record]]:
    return [
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, Record) and obj is not Record and "EVENT" in obj.__dict__
    ]


def test_every_event_has_exactly_one_record() -> None:
    by_event = [r.EVENT for r in _records()]
    assert sorted(by_event) == sorted(Event) and len(by_event) == len(set(by_event))


def test_a_record_writes_its_fields_then_its_extra_and_refuses_a_shadowing_extra() -> None:
    step = events.Step(step=Action.KEY_GENERATE, action="a", actors=["x"], inputs={}, outputs={}, result="ok",
                       extra={"details": {"n": 1}})  # fmt: skip
    assert list(step.entry_fields()) == ["step", "action", "actors", "inputs", "outputs", "result", "details"]
    with pytest.raises(ValueError, match="shadow declared ones"):
        events.Deviation(what="w", why="y", acknowledged_by=[], extra={"what": "other"}).entry_fields()
    with pytest.raises(TypeError):
        events.Deviation(what="w", why="y")  # type: ignore[call-arg]
    assert dataclasses.is_dataclass(step) and step.EVENT == "step"
