"""Token work in processes of its own: a process uses one SoftHSM2 configuration (``ceremony.keys.pkcs11``).

:func:`in_child` runs one call in a forked child and hands back its result or its exception, for a test
that needs a second token configuration (a rehearsal area's token, another workspace's) beside the one its
own process uses. :func:`run_forked` runs a whole test (set-up, call, tear-down) in a forked child: every
test marked ``hsm`` runs so (tests/conftest.py), since each makes its own token directory.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
_FORK = multiprocessing.get_context("fork")


class ChildFailed(AssertionError):
    """The child raised something that could not be handed back as itself."""


def _after_fork() -> None:
    """What a forked child must not inherit: the parent's asyncio loop (its selector's file descriptor is
    shared with the parent) and jupyter_core's runners, whose loop threads did not survive the fork (a
    notebook run in the child would wait on them for ever)."""
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        import jupyter_core.utils

        jupyter_core.utils._runner_map.clear()
    except ImportError:
        pass


def _pipe_result(send: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _after_fork()
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - handed back to the parent, which re-raises it
        outcome = ("raised", exc)
    try:
        try:
            data = pickle.dumps(outcome)
        except Exception:  # noqa: BLE001 - an unpicklable result or exception: say what it was
            what = outcome[1]
            text = "".join(traceback.format_exception(what)) if outcome[0] == "raised" else f"result {what!r}"
            data = pickle.dumps(("raised", ChildFailed(f"the child's answer could not be handed back: {text}")))
        send.send_bytes(data)
    finally:
        send.close()
        os._exit(0)


def in_child(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a forked child; its return value, or its exception raised here."""
    receive, send = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_pipe_result, args=(send, fn, args, kwargs))
    child.start()
    send.close()
    try:
        data = receive.recv_bytes()
    except EOFError as exc:
        child.join()
        raise ChildFailed(f"the child died without an answer (exit code {child.exitcode})") from exc
    child.join()
    kind, value = pickle.loads(data)  # noqa: S301 - our own child's answer
    if kind == "raised":
        raise value
    return value  # type: ignore[no-any-return]


def run_forked(item: pytest.Item, nextitem: pytest.Item | None) -> list[pytest.TestReport]:
    """The reports of ``item``'s whole run protocol, run in a forked child."""
    from _pytest.runner import runtestprotocol

    hook = item.config.hook

    def protocol() -> list[dict[str, Any]]:
        reports = runtestprotocol(item, log=False, nextitem=nextitem)
        return [hook.pytest_report_to_serializable(config=item.config, report=r) for r in reports]

    try:
        data = in_child(protocol)
    except BaseException as exc:  # noqa: BLE001 - the child itself broke: one failed report says how
        return [pytest.TestReport(item.nodeid, item.location, {}, "failed", f"forked run failed: {exc!r}", "call")]
    return [hook.pytest_report_from_serializable(config=item.config, data=d) for d in data]


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict[str, str]]) -> dict[str, str]:
    """What ``build(folder)`` returned, built once per test session into ``<basetemp>/<name>/`` and kept there as
    JSON: a module fixture of tests that run forked (``hsm``) is otherwise built again in every child. The
    session's basetemp is fixed before the first fork (tests/conftest.py), so every child finds the same folder.
    What is built is shared: tests copy it before changing it."""
    import json

    folder = factory.getbasetemp() / name
    done = folder / "built.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    folder.mkdir(exist_ok=True)
    attempt = Path(tempfile.mkdtemp(prefix="build-", dir=folder))  # a failed earlier attempt stays out of the way
    result = build(attempt)
    done.write_text(json.dumps(result), encoding="utf-8")
    return result
