"""The package sets the process environment in exactly one place (SoftHSM2's token configuration)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ceremony"


def environment_writes(source: str) -> list[int]:
    """Line numbers of every write to the process environment: ``os.environ[...] = ``, ``del
    os.environ[...]``, ``os.environ.update/setdefault/pop/clear(...)``, ``os.putenv``/``os.unsetenv``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        if any(isinstance(t, ast.Subscript) and ast.unparse(t.value) in ("os.environ", "environ") for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, name = ast.unparse(node.func.value), node.func.attr
            if (owner in ("os.environ", "environ") and name in ("update", "setdefault", "pop", "clear", "popitem")) or (
                owner == "os" and name in ("putenv", "unsetenv")
            ):
                lines.append(node.lineno)
    return lines


def test_exactly_one_place_sets_the_process_environment() -> None:
    found = {
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in environment_writes(path.read_text(encoding="utf-8"))
    }
    assert len(found) == 1 and next(iter(found)).startswith("ceremony/keys/pkcs11.py:"), found


def test_the_walker_sees_every_form_of_environment_write() -> None:
    planted = (
        "import os\nos.environ['A'] = '1'\nos.environ.update(B='2')\nos.putenv('C', '3')\n"
        "del os.environ['A']\nos.environ.setdefault('D', '4')\nx = os.environ.get('E')\n"
    )
    assert sorted(environment_writes(planted)) == [2, 3, 4, 5, 6]
