"""tests/ mirrors the package: every module has tests/<layer>/test_<module>.py, or a listed reason why not."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ceremony"

#: Modules whose tests legitimately live elsewhere: a pattern over package paths -> the test module that covers them.
COVERED_ELSEWHERE: dict[str, str] = {
    # One check per control, registered in controls/__init__.py; tests/compliance/test_controls.py holds the golden
    # cases of every control (a clean workspace passes, one named defect fails), so they are tested per control,
    # not per module.
    "ceremony/compliance/controls/*.py": "tests/compliance/test_controls.py",
}

#: tests in progress (issue H)
NOT_YET: set[str] = {
    "ceremony/cli/compliance.py",
    "ceremony/cli/workspace.py",
    "ceremony/issue/batch/bundle.py",
    "ceremony/issue/batch/plan.py",
    "ceremony/issue/importer.py",
    "ceremony/issue/key_transfer.py",
    "ceremony/issue/lookup.py",
    "ceremony/issue/revocation.py",
    "ceremony/record/backup.py",
}


def modules() -> list[str]:
    """Every module of the package, as a path relative to the repository (packages' __init__ and __main__ aside)."""
    return sorted(
        p.relative_to(REPO).as_posix() for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")
    )


def mirrored(module: str) -> str:
    """The test module that mirrors ``module``: ceremony/<layer>/<name>.py -> tests/<layer>/test_<name>.py."""
    path = Path(module).relative_to("ceremony")
    return (Path("tests") / path.parent / f"test_{path.name}").as_posix()


def _excepted(module: str) -> bool:
    return module in NOT_YET or any(fnmatch(module, pattern) for pattern in COVERED_ELSEWHERE)


def test_the_mirror_of_a_module() -> None:
    assert mirrored("ceremony/clock.py") == "tests/test_clock.py"
    assert mirrored("ceremony/keys/store.py") == "tests/keys/test_store.py"
    assert mirrored("ceremony/issue/batch/plan.py") == "tests/issue/batch/test_plan.py"
    assert "ceremony/clock.py" in modules() and "ceremony/__main__.py" not in modules()
    assert not any(m.endswith("/__init__.py") for m in modules())


def test_every_module_has_its_mirrored_test_module() -> None:
    missing = [m for m in modules() if not (REPO / mirrored(m)).is_file() and not _excepted(m)]
    assert not missing, "modules without their mirrored test module:\n" + "\n".join(
        f"  {m} (expected {mirrored(m)})" for m in missing
    )


def test_the_exceptions_are_not_stale() -> None:
    known = set(modules())
    stale = [f"{m}: no such module" for m in sorted(NOT_YET - known)]
    stale += [
        f"{m}: now has {mirrored(m)}; remove it from NOT_YET"
        for m in sorted(NOT_YET & known)
        if (REPO / mirrored(m)).is_file()
    ]
    for pattern, covering in COVERED_ELSEWHERE.items():
        if not any(fnmatch(m, pattern) for m in known):
            stale.append(f"{pattern}: matches no module")
        if not (REPO / covering).is_file():
            stale.append(f"{pattern}: its covering test {covering} does not exist")
    assert not stale, "\n".join(stale)
