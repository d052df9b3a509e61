"""JupyterLab on 127.0.0.1 driven through Debian's Chromium with Playwright, for the attended-ceremony tests.

Nothing is downloaded: Playwright's own driver launches the Chromium the system has (``executable_path``), with
the flags that keep it off the network (no component updates, sync, background requests or QUIC). JupyterLab
runs in its own process group with its configuration, data, runtime (kernel sockets: ``ipc``) and settings in
the test's directory, its output in a log the failure message shows; both are stopped in ``finally``, the
kernels it started included. Every wait is bounded and its failure names the cell and the prompt.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where Debian puts its Chromium (the package .ci/run installs).
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: Chromium's flags: headless, no sandbox (CI runs as root), and nothing that calls out of this closed network.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--password-store=basic",
)
#: JupyterLab's announcements ask whether to fetch news: a toast over the notebook, and a request out.
_PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}

#: What a cell's outputs say, read from the notebook model (the saved form, whatever the DOM renders).
_OUTPUTS_JS = """([path, index]) => {
  const widget = window.jupyterapp.shell.widgets('main').find(w => w.context && w.context.path === path);
  if (!widget) { return null; }
  const cell = widget.content.model.cells.get(index);
  return {count: cell.executionCount, outputs: cell.outputs.toJSON()};
}"""
_KERNEL_JS = """(path) => {
  const widget = window.jupyterapp.shell.widgets('main').find(w => w.context && w.context.path === path);
  const kernel = widget && widget.sessionContext.session && widget.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}"""
_DIRTY_JS = """(path) => {
  const widget = window.jupyterapp.shell.widgets('main').find(w => w.context && w.context.path === path);
  return widget ? widget.context.model.dirty : null;
}"""


def chromium() -> Path | None:
    """Debian's Chromium, or None where it is not installed."""
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which("chromium")
    return Path(found) if found else None


def unavailable() -> str | None:
    """Why a browser test cannot run here (None: it can): Chromium, Playwright or JupyterLab missing."""
    if chromium() is None:
        return "Chromium is not installed (apt-get install chromium)"
    for module, package in (("playwright.sync_api", "playwright"), ("jupyterlab", "jupyterlab")):
        try:
            __import__(module)
        except ImportError:
            return f"{package} is not installed (pip install -e '.[dev]')"
    return None


class BrowserTestError(AssertionError):
    """A wait ran out or the page showed something unexpected; the message says which cell and prompt."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab: its address, token, root and log."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    log: Path
    runtime: Path

    def url(self, notebook: Path) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook.relative_to(self.root).as_posix()}?token={self.token}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _ready(port: int, token: str) -> bool:
    try:
        with urllib.request.urlopen(  # noqa: S310 - our own server on loopback
            f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2
        ) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _kill_leftovers(marker: str) -> None:
    """Kernels JupyterLab started run in sessions of their own; find them by the runtime directory in their
    command line (their connection file), and end them by pid."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def jupyterlab(root: Path, home: Path, env: dict[str, str], *, timeout: float = 90) -> Iterator[Lab]:
    """JupyterLab serving ``root`` on 127.0.0.1 with a random token; its state under ``home``."""
    config, data = home / "config", home / "data"
    for d in (config / "labconfig", data):
        d.mkdir(parents=True, exist_ok=True)
    # The kernels' sockets: a Unix socket's path has at most 107 bytes, too few under pytest's tmp_path.
    runtime = Path(tempfile.mkdtemp(prefix="lab-"))  # 0700
    (config / "labconfig" / "page_config.json").write_text(json.dumps(_PAGE_CONFIG))
    port, token = free_port(), secrets.token_hex(24)
    log = home / "jupyterlab.log"
    full_env = {
        **env,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    command = [
        str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--KernelManager.transport=ipc",  # kernel channels over Unix sockets in the 0700 runtime dir, not TCP
        "--LabApp.expose_app_in_browser=True",  # the notebook model is read through window.jupyterapp
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.terminals_enabled=False", "--ServerApp.jpserver_extensions=jupyter_lsp=False",
        *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    lab = Lab(process, port, token, root, log, runtime)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(port, token):
            if process.poll() is not None:
                raise BrowserTestError(f"JupyterLab exited ({process.returncode}):\n{lab.log_tail()}")
            if time.monotonic() > deadline:
                raise BrowserTestError(f"JupyterLab did not answer on port {port} in {timeout:.0f}s:\n{lab.log_tail()}")
            time.sleep(0.3)
        yield lab
    finally:
        _stop(lab)


def _stop(lab: Lab) -> None:
    if lab.process.poll() is None:
        try:
            os.killpg(lab.process.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            lab.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait(timeout=10)
        except ProcessLookupError:
            pass
    _kill_leftovers(str(lab.runtime))
    shutil.rmtree(lab.runtime, ignore_errors=True)


@contextmanager
def chromium_page(*, timeout: float = 30) -> Iterator[Any]:
    """A Playwright page in Debian's Chromium (headless, a fresh profile), closed with the browser."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise BrowserTestError("Chromium is not installed")
    with sync_playwright() as playwright:
        # launch() gives Chromium a fresh temporary profile (--user-data-dir) and removes it on close.
        browser = playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_ARGS), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(timeout * 1000)
            yield page
        finally:
            browser.close()


def failure(page: Any, lab: Lab, shot: Path, message: str) -> BrowserTestError:
    """A failure that shows what the page looked like (a screenshot) and what JupyterLab logged."""
    try:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        seen = f"screenshot: {shot}"
    except Exception as exc:  # noqa: BLE001 - the failure is what matters; say why there is no picture
        seen = f"no screenshot ({type(exc).__name__}: {exc})"
    return BrowserTestError(f"{message}\n{seen}\nJupyterLab's log (last lines):\n{lab.log_tail()}")


def _gone(handle: Any) -> Callable[[], bool]:
    """Whether an answered prompt's box has left the page (the next prompt is a new box)."""
    return lambda: not handle.is_visible()


#: An answer to a stdin prompt: (prompt text, is a password box) -> what to type.
Answer = Callable[[str, bool], str]
_COUNT = re.compile(r"\[(\d+)\]")


class Notebook:
    """One notebook open in JupyterLab, its code cells run one by one as an officer runs them."""

    def __init__(self, page: Any, lab: Lab, path: Path, shots: Path) -> None:
        self.page, self.lab, self.path, self.shots = page, lab, path, shots
        self.rel = path.relative_to(lab.root).as_posix()

    def open(self, *, timeout: float = 60) -> Notebook:
        self.page.goto(self.lab.url(self.path))
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout * 1000)
        self._until(self._kernel_up, timeout, "the kernel to start")
        self.cells().first.wait_for(timeout=timeout * 1000)
        return self

    def cells(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def code_cells(self) -> list[int]:
        """The indexes (among all cells) of the code cells."""
        classes = self.cells().evaluate_all("cells => cells.map(c => c.className)")
        return [i for i, names in enumerate(classes) if "jp-CodeCell" in names.split()]

    def source(self, index: int) -> str:
        return str(self.page.evaluate(
            """([path, index]) => {
              const w = window.jupyterapp.shell.widgets('main').find(w => w.context && w.context.path === path);
              return w.content.model.cells.get(index).sharedModel.getSource();
            }""",
            [self.rel, index],
        ))  # fmt: skip

    def outputs(self, index: int) -> dict[str, Any]:
        return dict(self.page.evaluate(_OUTPUTS_JS, [self.rel, index]))

    def text(self, index: int) -> str:
        """Everything the cell's outputs say, as saved (stream text, results, errors)."""
        parts = []
        for out in self.outputs(index)["outputs"]:
            if out["output_type"] == "stream":
                parts.append(out["text"])
            elif out["output_type"] in ("execute_result", "display_data"):
                parts.append(str(out["data"].get("text/plain", "")))
            elif out["output_type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
        return "".join(parts)

    def errors(self, index: int) -> list[str]:
        return [f"{o['ename']}: {o['evalue']}" for o in self.outputs(index)["outputs"] if o["output_type"] == "error"]

    def run(self, index: int, answer: Answer, *, timeout: float = 120, stray: bool = False) -> str:
        """Click the cell, run it (Ctrl+Enter: run, stay), answer each prompt as it appears, wait until the
        kernel has replied; the cell's output text. ``stray``: no click, only Shift+Enter wherever the focus
        was left (the officer's next keystroke after a prompt), which must run cell ``index`` again."""
        where = f"cell {index} ({self.source(index).splitlines()[0]!r}) of {self.path.name}"
        before = self.outputs(index)["count"]
        cell = self.cells().nth(index)
        cell.scroll_into_view_if_needed()
        if stray:
            self.page.keyboard.press("Shift+Enter")
        else:
            cell.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Control+Enter")
        deadline = time.monotonic() + timeout
        prompts = 0
        while True:
            state = self.outputs(index)
            if state["count"] is not None and state["count"] != before and self._idle():
                break
            box = cell.locator(".jp-Stdin-input")
            if box.count():
                handle = box.first.element_handle()
                prompt = cell.locator(".jp-Stdin-prompt").last.inner_text()
                password = handle.get_attribute("type") == "password"
                try:
                    reply = answer(prompt, password)
                except Exception as exc:  # the room had no answer: show the page as it stood
                    raise self.failure(f"{where}: prompt {prompt!r}: {exc}") from exc
                handle.fill(reply)
                handle.press("Enter")
                prompts += 1
                self._until(_gone(handle), 20, f"{where}: the answer to prompt {prompt!r}")
                continue
            if time.monotonic() > deadline:
                raise self.failure(f"{where}: no reply from the kernel in {timeout:.0f}s after {prompts} prompts")
            time.sleep(0.1)
        return self.text(index)

    def _kernel_up(self) -> bool:
        status = self.page.evaluate(_KERNEL_JS, self.rel)
        if status == "dead":
            raise self.failure(f"the kernel of {self.path.name} died")
        return bool(status == "idle")

    def _idle(self) -> bool:
        return bool(self.page.evaluate(_KERNEL_JS, self.rel) == "idle")

    def save(self, *, timeout: float = 30) -> None:
        self.cells().first.locator(".jp-InputArea-prompt").click()  # command mode, the notebook focused
        self.page.keyboard.press("Control+s")
        self._until(lambda: self.page.evaluate(_DIRTY_JS, self.rel) is False, timeout, f"{self.path.name} to save")

    def screenshot(self, name: str, *, at: int | None = None) -> Path:
        """The page (with cell ``at`` scrolled into view: the notebook scrolls inside the page)."""
        if at is not None:
            self.cells().nth(at).scroll_into_view_if_needed()
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def failure(self, message: str) -> BrowserTestError:
        return failure(self.page, self.lab, self.shots / f"failure-{self.path.stem}.png", message)

    def _until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise self.failure(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.1)
