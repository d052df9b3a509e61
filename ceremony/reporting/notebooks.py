"""Notebook runs: papermill executes a ceremony notebook with checked parameters into a fresh run directory.

``ceremony run NOTEBOOK [-f PARAMS.yaml] [-p NAME VALUE]... [--rehearsal]`` lands here. Parameters are
recorded in the clear (``parameters.yaml``) and injected as source code, so none may be a secret: a name
containing a secret word (``pin``, ``share``, ``private_key``...) is refused. Secrets reach the kernel
through the environment or ``<workspace>/secrets/``. Errors name parameters, never their values.

papermill, nbclient and nbformat are imported when a notebook is inspected or run, not with the CLI.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ceremony.clock import current
from ceremony.errors import CeremonyError, ConfigError, InputError, StateError
from ceremony.model.config import load_yaml

SECRET_WORDS = frozenset(
    {"pin", "passphrase", "password", "secret", "mnemonic", "share", "shares", "component", "components"}
)
"""Whole words (snake_case, kebab-case or camelCase) that mark a parameter name as a secret."""

SECRET_SEQUENCES = (("private", "key"),)
"""Word sequences that mark a secret although each word alone does not."""

REFUSAL_ERRORS = frozenset({"InputError", "ConfigError", "StateError", "TokenError", "CustodyError", "IssuanceError"})
"""Exceptions that, raised in a notebook cell, are a refusal (exit code 2) rather than a failure."""

KERNEL = "python3"

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = frozenset({"null", "Null", "NULL", "~", "None"})
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def notebooks_dir() -> Path:
    """The shipped notebooks (beside data/)."""
    from ceremony.model.config import data_dir

    return data_dir().parent / "notebooks"


class NotebookError(CeremonyError):
    """A notebook cell failed (exit code 1), or refused with a ceremony error (exit code 2)."""

    exit_code = 1


@dataclass(frozen=True)
class RunResult:
    """Where one run went: its directory, the executed notebook and the recorded parameters."""

    run_dir: Path
    executed: Path
    parameters_file: Path


def ipc_kernel_manager() -> type:
    """A kernel manager that talks to the kernel over Unix sockets in a private (0700) directory.

    Jupyter's default is TCP on localhost in plain text, which any local user could listen to;
    an attended ceremony sends what people type (share words included) over that channel.
    """
    import tempfile

    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(Path(tempfile.mkdtemp(prefix="ceremony-kernel-")) / "kernel")

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts (SIGINT to the kernel's process group) before every shutdown request. After
            # the last cell nothing runs, but a kernel still finishing the reply's handler logs "KeyboardInterrupt
            # caught in kernel." as an ERROR on a successful run. The shutdown request alone stops an idle kernel; a
            # busy one is still terminated, then killed, after shutdown_wait_time. Interrupts asked for otherwise
            # (a cell's timeout) go through.
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        def cleanup_resources(self, restart: bool = False) -> None:
            super().cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(Path(self.ip).parent, ignore_errors=True)

    return IPCKernelManager


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def check_parameter_names(names: Iterable[str]) -> None:
    """Refuse any parameter whose name contains a secret word (``user_pin``, ``kekShares``, ``private_key_path``)."""
    for name in names:
        words = _words(name)
        found = next((w for w in words if w in SECRET_WORDS), None)
        for seq in SECRET_SEQUENCES:
            if found is None and any(tuple(words[i : i + len(seq)]) == seq for i in range(len(words))):
                found = "_".join(seq)
        if found is not None:
            raise InputError(
                f"parameter {name!r} looks like a secret (contains {found!r}); secrets reach the kernel "
                "through the environment or <workspace>/secrets/, never as parameters"
            )


def _key_paths(params: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every key, nested ones as ``outer.inner``: a secret must not hide inside a mapping either."""
    paths: list[str] = []
    for key, value in params.items():
        paths.append(f"{prefix}{key}")
        if isinstance(value, Mapping):
            paths.extend(_key_paths(value, f"{prefix}{key}."))
    return paths


def check_secret_parameters(params: Mapping[str, Any]) -> None:
    """Refuse parameters any of whose names, nested ones included, looks like a secret (see
    :func:`check_parameter_names`)."""
    check_parameter_names(_key_paths(params))


def load_params_file(path: Path) -> dict[str, Any]:
    """A ``-f`` parameters file: strict YAML whose top level maps parameter names to values."""
    if not path.is_file():
        raise InputError(f"{path}: no such parameters file")
    try:
        data = load_yaml(path)
    except ConfigError as exc:
        raise InputError(exc.message) from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise InputError(f"{path}: a parameters file must map parameter names to values")
    return data


def parse_value(text: str) -> Any:
    """A ``-p`` value as a YAML 1.2 core scalar: bool, int, float, null (or ``None``); anything else a string.

    YAML 1.1 surprises are avoided: ``yes``/``no``/``on``/``off``, ``1:30``, dates and ``[a, b]`` stay strings
    and ``010`` is ten.
    """
    if text in _BOOL:
        return _BOOL[text]
    if text in _NULL:
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_cli_params(pairs: list[tuple[str, str]] | list[list[str]]) -> dict[str, Any]:
    """The ``-p NAME VALUE`` pairs, values typed by :func:`parse_value`; a name given twice is refused."""
    params: dict[str, Any] = {}
    for pair in pairs:
        if len(pair) != 2:
            raise InputError("-p takes a NAME and a VALUE")
        name, value = pair
        if name in params:
            raise InputError(f"parameter {name!r} given twice with -p")
        params[name] = parse_value(value)
    return params


def _check_notebook(notebook: Path) -> None:
    if notebook.suffix != ".ipynb":
        raise InputError(f"{notebook}: not a notebook (expected a .ipynb file)")
    if not notebook.is_file():
        raise InputError(f"{notebook}: no such notebook")


def notebook_parameters(notebook: Path) -> dict[str, dict[str, str]]:
    """The parameters declared in the cell tagged ``parameters``: name -> {name, inferred_type_name, default, help}."""
    import papermill  # type: ignore[import-untyped,unused-ignore]
    from papermill.iorw import load_notebook_node  # type: ignore[import-untyped,unused-ignore]
    from papermill.utils import any_tagged_cell  # type: ignore[import-untyped,unused-ignore]

    _check_notebook(notebook)
    try:
        nb = load_notebook_node(str(notebook))
    except (OSError, ValueError) as exc:
        raise InputError(f"{notebook}: not a readable notebook ({type(exc).__name__})") from exc
    if not any_tagged_cell(nb, "parameters"):
        raise InputError(f"{notebook}: no cell tagged 'parameters'", hint="tag the cell that declares the defaults")
    try:
        found: dict[str, dict[str, str]] = papermill.inspect_notebook(str(notebook))
    except ValueError as exc:  # papermill needs metadata.kernelspec to pick its translator
        raise InputError(f"{notebook}: cannot read its parameters ({str(exc).splitlines()[0]})") from exc
    return found


def _run_dir(reports_dir: Path, notebook: Path, now: datetime, rehearsal: bool) -> Path:
    stamp = f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%S.%fZ}"
    run_dir = reports_dir / "runs" / f"{stamp}-{notebook.stem}{'-rehearsal' if rehearsal else ''}"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise StateError(f"{run_dir}: run directory already exists") from None
    return run_dir


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _cell_failure(notebook: Path, exec_count: object, ename: str, evalue: str, executed: Path) -> NotebookError:
    detail = f"{ename}: {_first_line(evalue)}" if _first_line(evalue) else ename
    error = NotebookError(f"{notebook.name}: cell {exec_count} failed: {detail}; executed notebook kept at {executed}")
    if ename in REFUSAL_ERRORS:
        error.exit_code = 2
    return error


@dataclass(frozen=True)
class PreparedRun:
    """A run's record before anything runs: its new directory, the checked parameters and ``parameters.yaml``."""

    notebook: Path
    run_dir: Path
    params: dict[str, Any]
    parameters_file: Path

    @property
    def copy(self) -> Path:
        """Where the run's notebook goes (executed by papermill, or the attended copy JupyterLab saves)."""
        return self.run_dir / self.notebook.name


def prepare_run(
    notebook: Path,
    params: dict[str, Any],
    *,
    reports_dir: Path,
    rehearsal: bool = False,
    now: datetime | None = None,
    workspace: Path | None = None,
) -> PreparedRun:
    """Check ``params`` against ``notebook`` and create the run's record: ``parameters.yaml`` in a new
    ``<reports_dir>/runs/<UTC>-<stem>[-rehearsal]/``, the one record both ``ceremony run`` and ``ceremony open`` write.

    The parameters are checked (no secret names, only names the notebook declares) before anything is written.
    A rehearsal sets the notebook's ``rehearsal`` parameter to True (``-p rehearsal true`` is a rehearsal too).
    ``workspace``, the workspace the run belongs to, is given to a notebook that declares a ``workspace``
    parameter the caller left unset: the record names it however the caller learnt it (an option, the
    environment, the default), and the evidence pack of that workspace carries the run.
    """
    _check_notebook(notebook)
    params = dict(params)
    check_secret_parameters(params)
    declared = notebook_parameters(notebook)
    if workspace is not None and "workspace" in declared and params.get("workspace") is None:
        params["workspace"] = str(workspace.resolve())
    unknown = sorted(set(params) - set(declared))
    if unknown:
        allowed = ", ".join(declared) or "(none)"
        raise InputError(f"{notebook.name} declares no parameter {', '.join(unknown)} (it declares: {allowed})")
    if rehearsal:
        if "rehearsal" not in declared:
            raise InputError(f"{notebook.name} cannot be rehearsed: it declares no 'rehearsal' parameter")
        params["rehearsal"] = True
    rehearsal = params.get("rehearsal") is True  # ``-p rehearsal true`` is a rehearsal too, and named as one

    run_dir = _run_dir(reports_dir, notebook, now or current().now(), rehearsal)
    parameters_file = run_dir / "parameters.yaml"
    parameters_file.write_text(yaml.safe_dump(params, sort_keys=True), encoding="utf-8")
    return PreparedRun(notebook=notebook, run_dir=run_dir, params=params, parameters_file=parameters_file)


def prepare_copy(
    notebook: Path,
    params: dict[str, Any],
    *,
    reports_dir: Path,
    rehearsal: bool = False,
    now: datetime | None = None,
    workspace: Path | None = None,
) -> PreparedRun:
    """The run copy an attended ceremony works on: the run's record (:func:`prepare_run`) and the notebook with its
    parameters injected (papermill's ``parameterize_notebook``, nothing executed) at ``<run_dir>/<notebook>``.

    The template in notebooks/ is only read: JupyterLab saves the officers' outputs into the copy, which the
    next evidence pack carries.
    """
    import nbformat
    from papermill.iorw import load_notebook_node  # type: ignore[import-untyped,unused-ignore]
    from papermill.parameterize import parameterize_notebook  # type: ignore[import-untyped,unused-ignore]

    prepared = prepare_run(notebook, params, reports_dir=reports_dir, rehearsal=rehearsal, now=now, workspace=workspace)
    nb = load_notebook_node(str(notebook))
    nb = parameterize_notebook(nb, dict(prepared.params), kernel_name=KERNEL, language="python")
    nbformat.write(nb, str(prepared.copy))  # type: ignore[no-untyped-call]
    return prepared


def run_notebook(
    notebook: Path,
    params: dict[str, Any],
    *,
    reports_dir: Path,
    rehearsal: bool = False,
    progress: bool | None = None,
    cwd: Path | None = None,
    now: datetime | None = None,
    workspace: Path | None = None,
) -> RunResult:
    """Execute ``notebook`` with ``params`` into ``<reports_dir>/runs/<UTC stamp>-<stem>[-rehearsal]/``.

    The run's record is written first (:func:`prepare_run`); the executed notebook is kept even when a cell
    fails. The kernel runs in ``cwd`` (default: the caller's directory), so relative paths given as parameters
    mean what they said.
    """
    import papermill  # type: ignore[import-untyped,unused-ignore]
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    prepared = prepare_run(notebook, params, reports_dir=reports_dir, rehearsal=rehearsal, now=now, workspace=workspace)
    executed = prepared.copy
    try:
        # Absolute paths: papermill saves the output while chdir'd into ``cwd``.
        papermill.execute_notebook(
            str(notebook.resolve()),
            str(executed.resolve()),
            parameters=prepared.params,
            kernel_name=KERNEL,
            kernel_manager_class=ipc_kernel_manager(),
            progress_bar=sys.stderr.isatty() if progress is None else progress,
            cwd=str((cwd or Path.cwd()).resolve()),
            log_output=False,
        )
    except papermill.PapermillExecutionError as exc:
        raise _cell_failure(notebook, exc.exec_count, exc.ename, exc.evalue, executed) from None
    except NoSuchKernel as exc:
        raise NotebookError(
            f"{notebook.name}: no Jupyter kernel named {exc.name!r}", hint="pip install ipykernel"
        ) from None
    except (papermill.PapermillException, CellTimeoutError, DeadKernelError, RuntimeError, OSError) as exc:
        kept = f"; executed notebook kept at {executed}" if executed.exists() else ""
        raise NotebookError(
            f"{notebook.name}: could not run ({type(exc).__name__}: {_first_line(str(exc))}){kept}"
        ) from None
    return RunResult(run_dir=prepared.run_dir, executed=executed, parameters_file=prepared.parameters_file)


def execute_with_nbclient(notebook: Path, params: dict[str, Any], output: Path, *, cwd: Path) -> Path:
    """The same run without papermill's engine: papermill injects the parameters, nbclient executes.

    Shows that a notebook means the same under plain Jupyter tooling as under ``ceremony run``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from papermill.iorw import load_notebook_node  # type: ignore[import-untyped,unused-ignore]
    from papermill.parameterize import parameterize_notebook  # type: ignore[import-untyped,unused-ignore]

    _check_notebook(notebook)
    check_secret_parameters(params)
    nb = load_notebook_node(str(notebook))  # adds the per-cell tags/metadata parameterize_notebook expects
    nb = parameterize_notebook(nb, dict(params), kernel_name=KERNEL, language="python")
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        kernel_manager_class=ipc_kernel_manager(),
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = [c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        count = failed[0].get("execution_count") if failed else None
        raise _cell_failure(notebook, count, exc.ename, exc.evalue, output) from None
    finally:
        nbformat.write(nb, str(output))  # type: ignore[no-untyped-call]
    return output
