"""The batch package's shape: a frozen plan that reaches forked workers through their initializer, and no module
state written at run time (DESIGN.md: worker context is a frozen value given to the pool initializer)."""

from __future__ import annotations

import ast
import dataclasses
import os
import pickle
from pathlib import Path

import pytest
from cryptography import x509

from ceremony.issue.batch import BatchPlan, read_device_list, runner
from ceremony.issue.batch.plan import build_templates, ca_point, issuer_of_certificate
from ceremony.issue.batch.runner import check_rows, signing
from ceremony.issue.recovery import issuer_of
from ceremony.model.profiles import get_profile
from ceremony.model.template import batch_time, utc_time
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list

REPO = Path(__file__).resolve().parents[3]
SCANNED = sorted((REPO / "ceremony/issue/batch").glob("*.py")) + [REPO / "ceremony/record/batches.py"]
#: The one module value written at run time, and by whom: a pool worker's plan, set by the pool's initializer
#: inside the worker only (see ``runner._WORKER``).
WORKER_HOLDER = {("ceremony/issue/batch/runner.py", "_WORKER", "_enter_worker")}
MUTATORS = frozenset(
    {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem", "add", "discard",
     "sort", "reverse", "__setitem__", "__delitem__", "__setattr__"}
)  # fmt: skip
MUTABLE_FACTORIES = frozenset({"list", "dict", "set", "bytearray", "defaultdict", "OrderedDict", "Counter", "deque"})


def _plan(ws: Workspace, accepted: int, **changes: object) -> BatchPlan:
    profile = get_profile("ss1sp-device", ws.config.oids)
    _, issuer_cert, key = issuer_of(ws, "issuing")
    values: dict[str, object] = {
        "batch_id": "b-test",
        "key": key,
        "ca_public": issuer_cert.public_key(),
        "templates": build_templates(profile, issuer_of_certificate(issuer_cert)),
        "profile": profile,
        "issuer_cert": issuer_cert,
        "not_before": utc_time(batch_time(ws.clock.now())),
        "sample_rate": 1.0,
        "total": accepted,
    }
    return BatchPlan(**{**values, **changes})  # type: ignore[arg-type]


def test_the_plan_is_frozen_and_never_pickled(ca_workspace: Workspace) -> None:
    plan = _plan(ca_workspace, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.batch_id = "b-other"  # type: ignore[misc]
    # Its CA key cannot be pickled (a token key holds a session and its PIN): workers inherit it through fork.
    with pytest.raises(TypeError):
        pickle.dumps(plan)


def test_workers_get_the_plan_from_their_initializer_and_sign_with_the_inherited_key(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    """With a SoftHSM2 key (and the software one): what two forked workers sign is what this process signs."""
    listing = read_device_list(device_list(tmp_path / "list", 3))
    issuer_cert = x509.load_der_x509_certificate(ca_workspace.inventory.ca_certificate_der("issuing"))
    checked = check_rows(listing, ca_point=ca_point(issuer_cert), jobs=2, progress=False, chunk=2)
    accepted = [c for c in checked if isinstance(c, bytes)]
    assert len(accepted) == 6
    plan = _plan(ca_workspace, len(accepted))
    outcomes = {}
    for jobs in (2, 1):
        with signing(plan, accepted, jobs=jobs, chunk=4) as out:
            chunks = list(out)
        assert runner._WORKER == []  # the process that made the pool never holds a plan
        assert [len(c) for c in chunks] == [4, 2] and not any(isinstance(c, str) for c in chunks)
        signed = [s for c in chunks for s in c if not isinstance(s, str)]
        for s in signed:
            cert = x509.load_der_x509_certificate(s.der)
            cert.verify_directly_issued_by(issuer_cert)
            assert utc_time(cert.not_valid_before_utc) == plan.not_before  # one notBefore for the whole run
        outcomes[jobs] = [(s.eui64, s.ka, s.csr_sha256, s.not_before) for s in signed]
    assert outcomes[2] == outcomes[1] == [(p[:8], bool(p[8]), p[74:106], plan.not_before) for p in accepted]


def test_the_worker_holder_is_never_set_in_the_process_that_makes_the_pool(ca_workspace: Workspace) -> None:
    with pytest.raises(RuntimeError, match="forked pool workers only"):
        runner._enter_worker(_plan(ca_workspace, 1), os.getpid())
    assert runner._WORKER == []


# --- no module state written at run time --------------------------------------------------------
def _module_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _locals(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Names a function binds itself (parameters, assignments, loop and with targets, nested definitions)."""
    args = function.args
    found = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    found |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for node in ast.walk(function):
        if isinstance(node, ast.arg):
            found.add(node.arg)  # a nested function's or lambda's parameter
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not function:
            found.add(node.name)
    return found


def _root(node: ast.expr) -> str | None:
    """The name an attribute or subscript chain starts from (``a`` of ``a.b[c].d``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def module_state_writes(source: str, path: str) -> set[tuple[str, str, str]]:
    """(path, module name, where) for every write to module state: a ``global`` statement, an assignment into a
    module-level value (item, slice or attribute), a mutating method called on one, in any function; and a
    module-level value made mutable (a list, dict or set display or factory), written ``<module>``."""
    tree = ast.parse(source, filename=path)
    names = _module_names(tree)
    found: set[tuple[str, str, str]] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            value, bound = statement.value, statement.targets
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            value, bound = statement.value, [statement.target]
        else:
            continue
        mutable = isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp) or (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in MUTABLE_FACTORIES
        )
        if mutable:
            found |= {(path, t.id, "<module>") for t in bound if isinstance(t, ast.Name)}
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)]
    for function in functions:
        where = getattr(function, "name", "<lambda>")
        shared = names - _locals(function)
        for node in ast.walk(function):
            if isinstance(node, ast.Global | ast.Nonlocal):
                found |= {(path, name, where) for name in node.names}
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign | ast.Delete):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if isinstance(part, ast.Attribute | ast.Subscript) and _root(part) in shared:
                        found.add((path, _root(part) or "", where))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
                if _root(node.func.value) in shared:
                    found.add((path, _root(node.func.value) or "", where))
    return found


def test_no_module_of_the_batch_package_writes_module_state_but_the_worker_holder() -> None:
    found = set()
    for path in SCANNED:
        found |= module_state_writes(path.read_text(encoding="utf-8"), path.relative_to(REPO).as_posix())
    holder = {(path, name) for path, name, _ in WORKER_HOLDER}
    assert {f for f in found if f[2] != "<module>"} == WORKER_HOLDER
    assert {(path, name) for path, name, where in found if where == "<module>"} == holder


PLANTED = """\
import functools
_CONTEXT: dict = {}
_SEEN = set()
LIMIT = 3
ROWS = (1, 2)


def install(plan):
    _CONTEXT.clear()
    _CONTEXT.update(plan=plan)


def bump():
    global LIMIT
    LIMIT += 1


def note(x):
    _SEEN.add(x)
    functools.cache = None


def fine(rows, _CONTEXT):
    _CONTEXT["x"] = 1  # a parameter of that name, not the module's
    local = []
    local.append(ROWS[0])
    return local
"""


def test_the_module_state_walker_catches_a_planted_module() -> None:
    assert module_state_writes(PLANTED, "planted.py") == {
        ("planted.py", "_CONTEXT", "<module>"),
        ("planted.py", "_SEEN", "<module>"),
        ("planted.py", "_CONTEXT", "install"),
        ("planted.py", "LIMIT", "bump"),
        ("planted.py", "_SEEN", "note"),
        ("planted.py", "functools", "note"),
    }


# --- where a batch's time goes ----------------------------------------------------------------
def test_a_one_job_batch_times_every_stage_and_a_pooled_one_the_parents(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    from ceremony.issue.batch import issue_batch
    from ceremony.issue.batch.stages import BUNDLE, ORDER, RECORD

    for jobs in (1, 2):
        listing = device_list(tmp_path / f"list-{jobs}", 3 + jobs, first=100 * jobs)
        result = issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=listing,
                             approved_by="bob", jobs=jobs, progress=False, chunk=4)  # fmt: skip
        assert result.issued_now == 2 * (3 + jobs)
        expected = set(ORDER) if jobs == 1 else {RECORD, BUNDLE}  # a pool's workers time their own stages
        assert set(result.stages) == expected and all(s >= 0 for s in result.stages.values())
        assert "stages" not in result.to_json()  # the CLI's --json says what was done, not how long it took


def test_a_chunk_is_signed_step_by_step_and_each_certificate_verifies(ca_workspace: Workspace, tmp_path: Path) -> None:
    from ceremony.issue.batch.runner import issue_chunk
    from ceremony.issue.batch.stages import FILL, SAMPLE, SIGN, VERIFY

    listing = read_device_list(device_list(tmp_path / "list", 2))
    issuer_cert = x509.load_der_x509_certificate(ca_workspace.inventory.ca_certificate_der("issuing"))
    accepted = [c for c in check_rows(listing, ca_point=ca_point(issuer_cert), jobs=1, progress=False, chunk=8)
                if isinstance(c, bytes)]  # fmt: skip
    stages: dict[str, float] = {}
    signed = issue_chunk(_plan(ca_workspace, len(accepted)), 0, [a[:106] for a in accepted], stages)
    assert not isinstance(signed, str) and len(signed) == 4
    assert set(stages) == {FILL, SIGN, VERIFY, SAMPLE}
    assert len({s.serial for s in signed}) == 4
    for s, request in zip(signed, accepted, strict=True):
        cert = x509.load_der_x509_certificate(s.der)
        cert.verify_directly_issued_by(issuer_cert)
        assert cert.serial_number == int.from_bytes(s.serial, "big") and (s.eui64, s.ka) == (
            request[:8],
            bool(request[8]),
        )


def test_a_chunk_whose_signature_does_not_verify_is_refused_whole(ca_workspace: Workspace, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from ceremony.issue.batch.runner import issue_chunk

    listing = read_device_list(device_list(tmp_path / "list", 2))
    issuer_cert = x509.load_der_x509_certificate(ca_workspace.inventory.ca_certificate_der("issuing"))
    accepted = [c[:106] for c in check_rows(listing, ca_point=ca_point(issuer_cert), jobs=1, progress=False, chunk=8)
                if isinstance(c, bytes)]  # fmt: skip
    stranger = ec.generate_private_key(ec.SECP256R1())  # signs, but is not the CA key the plan verifies with
    outcome = issue_chunk(_plan(ca_workspace, len(accepted), key=stranger), 0, accepted)
    assert isinstance(outcome, str) and outcome.endswith("does not verify")


def test_every_certificate_of_a_chunk_is_linted_not_only_the_sample(
    ca_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ceremony.issue.batch.runner import issue_chunk
    from ceremony.model import template

    listing = read_device_list(device_list(tmp_path / "list", 4))
    issuer_cert = x509.load_der_x509_certificate(ca_workspace.inventory.ca_certificate_der("issuing"))
    accepted = [c[:106] for c in check_rows(listing, ca_point=ca_point(issuer_cert), jobs=1, progress=False, chunk=8)
                if isinstance(c, bytes)]  # fmt: skip
    drawn = template.new_serials(len(accepted))
    negative = b"\x80" + drawn[3][1:]  # 16 octets, so the template takes it; a negative serial (RFC 5280 4.1.2.2)
    monkeypatch.setattr("ceremony.issue.batch.runner.new_serials", lambda n: [*drawn[:3], negative, *drawn[4:]][:n])
    plan = _plan(ca_workspace, len(accepted), sample_rate=0.0)  # only the first and the last are sampled
    outcome = issue_chunk(plan, 0, accepted)
    assert outcome == (
        f"post-issuance check of serial {negative.hex().upper()} failed: ERROR profile.serial.not_positive: "
        "serial number is not positive (RFC 5280 4.1.2.2)"
    )
    monkeypatch.setattr("ceremony.issue.batch.runner.new_serials", lambda n: drawn[:n])
    assert not isinstance(issue_chunk(plan, 0, accepted), str)
