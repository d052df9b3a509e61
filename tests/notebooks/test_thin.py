"""Every notebook is thin (DESIGN.md principle 1): one parameters cell of literals, then imports, calls into the
package and display; no definitions, loops, comprehensions, try or with, and no cell over 10 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
MAX_LINES = 10
#: Logic that belongs in the package: definitions, loops, comprehensions, exception handling, context managers.
FORBIDDEN: tuple[type[ast.AST], ...] = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.Try, ast.With, ast.AsyncWith, ast.For,
    ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
)  # fmt: skip


def _parameters_problems(tree: ast.Module) -> list[str]:
    problems = []
    for statement in tree.body:
        target = statement.targets[0] if isinstance(statement, ast.Assign) and len(statement.targets) == 1 else None
        if not isinstance(target, ast.Name):
            problems.append(f"parameters line {statement.lineno}: only `name = literal` assignments")
            continue
        try:
            ast.literal_eval(statement.value)  # type: ignore[union-attr]
        except (ValueError, TypeError, SyntaxError):
            problems.append(f"parameters line {statement.lineno}: {target.id} is not a literal")
    return problems


def thinness_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Why ``nb`` is not thin, one line per problem (an empty list: it is)."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = [i for i, c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"{len(tagged)} cells tagged parameters (exactly one is required)")
    for i, cell in code:
        lines = [line for line in cell.source.splitlines() if line.strip()]
        if len(lines) > MAX_LINES:
            problems.append(f"cell {i}: {len(lines)} non-blank lines (at most {MAX_LINES})")
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            problems.append(f"cell {i}: not plain Python ({exc.msg})")
            continue
        for node in ast.walk(tree):
            if isinstance(node, FORBIDDEN):
                problems.append(f"cell {i} line {node.lineno}: {type(node).__name__} belongs in the package")  # type: ignore[attr-defined]
        if i in tagged:
            problems += [f"cell {i}: {p}" for p in _parameters_problems(tree)]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_is_thin(path: Path) -> None:
    assert thinness_problems(nbformat.read(path, as_version=4)) == []


def test_every_shipped_notebook_is_checked() -> None:
    stems = {p.stem for p in NOTEBOOKS}
    assert (
        len(NOTEBOOKS) >= 11
        and {"05-token-init-ceremony", "30-issue-certificates", "80-compliance-evidence-pack"} <= stems
    )


PARAMETERS = 'workspace = None  # a comment\nn = 3\nnames = ("a", "b")'


def _notebook(*cells: str, parameters: str = PARAMETERS) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook\n\nfor each step, read aloud: def, class, lambda")]
    nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    return nb


def test_a_thin_synthetic_notebook_passes() -> None:
    nb = _notebook("from ceremony.reporting import report\n\nr = report.load_report(pack)\nreport.verdict_section(r)")
    assert thinness_problems(nb) == []


def test_a_def_fails_the_rule() -> None:
    nb = _notebook("import json\n\n\ndef load(path):\n    return json.loads(path.read_text())")
    assert thinness_problems(nb) == ["cell 2 line 4: FunctionDef belongs in the package"]


def test_a_cell_over_ten_lines_fails_the_rule() -> None:
    nb = _notebook("\n\n".join(f"x{n} = call({n})" for n in range(11)))
    assert thinness_problems(nb) == ["cell 2: 11 non-blank lines (at most 10)"]


@pytest.mark.parametrize(
    ("source", "node"),
    [
        ("rows = [r for r in result]", "ListComp"),
        ("print(', '.join(str(r) for r in rows))", "GeneratorExp"),
        ("key = lambda r: r.serial", "Lambda"),
        ("for r in rows:\n    print(r)", "For"),
        ("while ws.busy():\n    pass", "While"),
        ("try:\n    run()\nexcept Exception:\n    pass", "Try"),
        ("with open('f') as fh:\n    fh.read()", "With"),
        ("class Row:\n    pass", "ClassDef"),
        ("counts = {k: 0 for k in keys}", "DictComp"),
        ("seen = {r for r in rows}", "SetComp"),
    ],
)
def test_each_kind_of_logic_fails_the_rule(source: str, node: str) -> None:
    [problem] = thinness_problems(_notebook(source))
    assert problem.startswith("cell 2 line ") and problem.endswith(f"{node} belongs in the package")


def test_parameters_must_be_literals_in_one_tagged_cell() -> None:
    nb = _notebook(parameters="from pathlib import Path\nworkspace = Path('ws')\nn = 3")
    assert thinness_problems(nb) == [
        "cell 1: parameters line 1: only `name = literal` assignments",
        "cell 1: parameters line 2: workspace is not a literal",
    ]
    untagged = _notebook("x = 1")
    untagged.cells[1].metadata = {}
    assert thinness_problems(untagged) == ["0 cells tagged parameters (exactly one is required)"]
