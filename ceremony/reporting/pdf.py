"""An executed notebook as an A4 PDF: nbconvert's lab template to HTML, then headless Chromium or WeasyPrint.

Nothing is fetched from the network: the template's remote scripts (RequireJS, MathJax, Mermaid, widgets) are
left out, a Content-Security-Policy keeps Chromium to ``file:`` and ``data:`` URLs, and WeasyPrint's fetcher
allows only those two. Math stays as its LaTeX source, and JavaScript outputs do not run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ceremony.errors import InputError, StateError

RENDERERS = ("chromium", "weasyprint")
"""The renderers in the order ``renderer="auto"`` tries them."""

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_TIMEOUT = 120.0
"""Seconds Chromium may take to print one notebook."""

PRINT_CSS = """
@page { size: A4; margin: 15mm; }
html, body { background: white; }
body.jp-Notebook { padding: 0; margin: 0; overflow: visible; }
img, svg { max-width: 100%; height: auto; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.jp-InputArea, .jp-InputArea-editor, .jp-OutputArea-output { overflow: visible; }
.jp-RenderedHTMLCommon table, .dataframe { border-collapse: collapse; font-size: 8pt; max-width: 100%; }
.jp-RenderedHTMLCommon th, .jp-RenderedHTMLCommon td, .dataframe th, .dataframe td {
  border: 0.5pt solid #bbb; padding: 1pt 3pt; overflow-wrap: anywhere;
}
.jp-RenderedHTMLCommon tbody tr:nth-child(even), .dataframe tbody tr:nth-child(even) { background: #f3f3f3; }
tr, img, .jp-OutputArea-output { break-inside: avoid; }
h1, h2, h3, h4 { break-after: avoid; }
"""

CSP = "default-src 'none'; img-src data: file:; style-src 'unsafe-inline' data: file:; font-src data: file:"
"""No scripts and no network: only inline styles and local or inline images and fonts."""

TEMPLATE = (
    "{%- extends 'index.html.j2' -%}\n"
    "{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}\n"
    "{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}\n"
    "{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}\n"
    "{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}\n"
    "{%- block html_head_css -%}\n"
    f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
    f'<style type="text/css">{PRINT_CSS}</style>\n'
    "{%- endblock html_head_css -%}\n"
)
TEMPLATE_NAME = "ceremony-pdf.html.j2"


def _chromium() -> str | None:
    """The Chromium (or Chrome) executable, or None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    return None


def _weasyprint_usable() -> bool:
    try:
        from weasyprint import URLFetcher  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
    except (ImportError, OSError):  # ImportError: absent or older than 68; OSError: Pango is missing
        return False
    return True


def available_renderers() -> list[str]:
    """The renderers usable on this machine, in the order ``renderer="auto"`` tries them."""
    usable = {"chromium": _chromium() is not None, "weasyprint": _weasyprint_usable()}
    return [name for name in RENDERERS if usable[name]]


def notebook_html(notebook: Path, *, hide_code: bool = False, title: str | None = None) -> str:
    """The notebook as one self-contained HTML page (with ``hide_code``: outputs and markdown only)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.read(str(notebook), as_version=4)  # type: ignore[no-untyped-call,unused-ignore]
    except (OSError, ValueError) as exc:  # nbformat's read errors are ValueErrors
        raise InputError(f"{notebook}: not a readable notebook: {str(exc).splitlines()[0]}") from None
    if title is not None:
        nb.metadata["title"] = title
    exporter = HTMLExporter(  # type: ignore[no-untyped-call,unused-ignore]
        template_name="lab",
        template_file=TEMPLATE_NAME,
        extra_loaders=[DictLoader({TEMPLATE_NAME: TEMPLATE})],
        exclude_input=hide_code,
        exclude_input_prompt=hide_code,
        exclude_output_prompt=hide_code,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    return str(body)


def _print_chromium(html: Path, pdf: Path, scratch: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        raise StateError("Chromium is not installed (apt-get install chromium)")
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={scratch / 'profile'}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        html.as_uri(),
    ]
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        raise StateError(f"cannot start {chromium}: {exc.strerror}") from None
    try:
        _, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the wrapper script and every browser process it started
        proc.communicate()
        raise StateError(f"Chromium did not print the PDF within {CHROMIUM_TIMEOUT:.0f} s") from None
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        why = re.sub(r"^\[[^]]*\]\s*", "", lines[-1].strip()) if lines else "no PDF written"  # [pid:tid:...:ERROR:x.cc]
        raise StateError(f"Chromium failed to print the PDF (exit {proc.returncode}): {why}")


def _print_weasyprint(html: Path, pdf: Path) -> None:
    try:
        from weasyprint import HTML, URLFetcher  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except (ImportError, OSError) as exc:
        raise StateError(f"WeasyPrint is not usable: {str(exc).splitlines()[0]}") from None
    try:
        HTML(filename=str(html), url_fetcher=URLFetcher(allowed_protocols=("file", "data"))).write_pdf(str(pdf))
    except Exception as exc:  # WeasyPrint may raise anything from its layout and font code
        why = (str(exc).splitlines() or [""])[0]
        raise StateError(f"WeasyPrint failed to print the PDF: {type(exc).__name__}: {why}") from None


def render_pdf(
    notebook: Path, out: Path, *, hide_code: bool = False, renderer: str = "auto", title: str | None = None
) -> Path:
    """Render an executed ``notebook`` as an A4 PDF at ``out`` (never overwritten) and return ``out``.

    ``hide_code`` leaves out code cells' inputs and all prompts (a report: outputs and markdown).
    ``renderer`` is ``"chromium"``, ``"weasyprint"`` or ``"auto"`` (the first of those available).
    """
    if renderer != "auto" and renderer not in RENDERERS:
        raise InputError(f"unknown PDF renderer {renderer!r}", hint=f"one of auto, {', '.join(RENDERERS)}")
    if out.exists():
        raise InputError(f"{out} already exists: not overwriting it")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} is not a directory")
    if not notebook.is_file():
        raise InputError(f"{notebook}: no such notebook")
    available = available_renderers()
    if renderer == "auto":
        if not available:
            raise StateError(
                "no PDF renderer is available",
                hint="apt-get install chromium, or pip install weasyprint and apt-get install libpango-1.0-0 "
                "libpangoft2-1.0-0",
            )
        renderer = available[0]
    elif renderer not in available:
        raise InputError(f"PDF renderer {renderer!r} is not available on this machine")

    page = notebook_html(notebook, hide_code=hide_code, title=title)
    with tempfile.TemporaryDirectory(prefix="ceremony-pdf-") as scratch:
        html = Path(scratch) / f"{notebook.stem}.html"
        html.write_text(page, encoding="utf-8")
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        partial = Path(name)
        try:
            if renderer == "chromium":
                _print_chromium(html, partial, Path(scratch))
            else:
                _print_weasyprint(html, partial)
            try:
                os.link(partial, out)  # atomic, and never replaces a file that appeared meanwhile
            except FileExistsError:
                raise InputError(f"{out} already exists: not overwriting it") from None
            except OSError:  # a file system without hard links
                os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return out
