"""Only the record layer speaks SQL: no module of ``ceremony/`` outside ``ceremony/record/`` holds a SQL
statement or calls ``execute`` on an inventory (DESIGN.md, "no module outside record/ builds SQL")."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ceremony"
SQL_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH|PRAGMA)\b", re.IGNORECASE)
#: The inventory's doors to SQL (private: only the record layer and the tests use them).
DOORS = frozenset({"execute", "executemany", "_execute", "_executemany", "exec_driver_sql"})
#: Names that hold an inventory by this package's convention (``with ws.inventory.transaction() as db``).
INVENTORY_NAMES = frozenset({"inventory", "_inventory", "db"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _is_inventory(node: ast.expr, bound: set[str]) -> bool:
    """Whether an expression holds an inventory: ``….inventory``, ``Inventory(…)``, or a name bound to one."""
    if isinstance(node, ast.Attribute):
        return node.attr in INVENTORY_NAMES - {"db"}
    if isinstance(node, ast.Name):
        return node.id in INVENTORY_NAMES or node.id in bound
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        return name == "Inventory"
    return False


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the module binds to an inventory: ``x = ws.inventory``, ``with ….transaction() as x``, and
    parameters annotated ``Inventory``."""
    bound: set[str] = set()
    for _ in range(2):  # a second pass catches a name bound from a name bound later in the text
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and _is_inventory(node.value, bound):
                bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if (node.value is not None and _is_inventory(node.value, bound)) or "Inventory" in ast.unparse(
                    node.annotation
                ):
                    bound.add(node.target.id)
            elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                call = node.context_expr
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                    if call.func.attr == "transaction" or _is_inventory(call, bound):
                        bound.add(node.optional_vars.id)
            elif isinstance(node, ast.arg) and node.annotation is not None:
                if "Inventory" in ast.unparse(node.annotation):
                    bound.add(node.arg)
    return bound


def _not_starts(tree: ast.AST) -> set[int]:
    """Ids of string constants that are not the start of a string value: docstrings and other strings
    standing alone as statements (documentation, never sent anywhere), and an f-string's later parts."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            skip.add(id(node.value))
        elif isinstance(node, ast.JoinedStr):
            skip |= {id(part) for part in node.values[1:]}
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skip |= {id(part) for part in ast.walk(node.format_spec)}
    return skip


def sql_violations(source: str, path: str = "<module>") -> list[Violation]:
    """Every SQL statement in a module's text (a string that starts with a SQL keyword) and every call of an
    inventory's ``execute``/``executemany`` (or its private doors), in line order."""
    tree = ast.parse(source, filename=path)
    skip, bound = _not_starts(tree), _bound_names(tree)
    found: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            match = SQL_START.match(node.value)
            if match:
                found.append(Violation(path, node.lineno, f"SQL {match.group(1).upper()} statement {node.value!r:.60}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DOORS:
            if _is_inventory(node.func.value, bound):
                found.append(Violation(path, node.lineno, f"{ast.unparse(node.func)}() passes SQL to the inventory"))
    return sorted(found, key=lambda v: (v.line, v.what))


def _modules_outside_record() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "record" not in p.relative_to(PACKAGE).parts[:1])


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_no_module_outside_record_speaks_sql() -> None:
    found = [
        str(v)
        for path in _modules_outside_record()
        for v in sql_violations(path.read_text(encoding="utf-8"), _relative(path))
    ]
    assert found == [], "SQL outside ceremony/record/ (add a named query there instead):\n" + "\n".join(found)


PLANTED = '''\
"""Select the certificates to show: a docstring, not SQL."""

from ceremony.record.inventory import Inventory


def count(ws, label):
    """Update nothing (a docstring)."""
    rows = ws.inventory.execute("  select COUNT(*) FROM certificates")
    with ws.inventory.transaction() as tx:
        tx.executemany(f"INSERT INTO findings VALUES ({label})", [])
    store = ws.inventory
    store._execute("PRAGMA user_version")
    client.execute()
    message = f"{label} with no rotation ceremony, {label:<14}"
    return rows, message


def write(db, other: Inventory, query):
    db.execute(query)
    other.execute(query)
    return """
        WITH recent AS (SELECT 1) DELETE FROM crls"""
'''


def test_the_walker_catches_a_planted_module(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED, encoding="utf-8")
    found = sql_violations(planted.read_text(encoding="utf-8"), "planted.py")
    assert [(v.line, v.what.split(" ")[0] if v.what.startswith("SQL") else v.what) for v in found] == [
        (8, "SQL"),
        (8, "ws.inventory.execute() passes SQL to the inventory"),
        (10, "SQL"),
        (10, "tx.executemany() passes SQL to the inventory"),
        (12, "SQL"),
        (12, "store._execute() passes SQL to the inventory"),
        (19, "db.execute() passes SQL to the inventory"),
        (20, "other.execute() passes SQL to the inventory"),
        (21, "SQL"),
    ]
    assert [v.what.split(" ")[1] for v in found if v.what.startswith("SQL")] == ["SELECT", "INSERT", "PRAGMA", "WITH"]


def test_documentation_and_english_are_not_sql() -> None:
    source = '"""Delete the key file."""\nmessage = "selected 3 keys"\nnote = f"{n} with errors"\nclient.execute()\n'
    assert sql_violations(source) == []
