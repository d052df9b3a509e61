"""An executed notebook as an A4 PDF: nbconvert's lab template to HTML, then headless Chromium or WeasyPrint.

:func:`render_pdf` prints a run's notebook with whichever renderer is installed. :func:`render_archival_pdf`
prints an evidence pack's documents: always WeasyPrint (Chromium's print gives no PDF/A), through the workbench's
own print template (``templates/print.html.j2`` and ``print.css``: a running header, page numbers, tables that
wrap within the page, wide ones on landscape pages), as PDF/A-3b (ISO 19005-3) with the document's metadata and
its associated files embedded.

Nothing is fetched from the network: the template's remote scripts (RequireJS, MathJax, Mermaid, widgets) are
left out, a Content-Security-Policy keeps Chromium to ``file:`` and ``data:`` URLs, and WeasyPrint's fetcher
allows only those two. Math stays as its LaTeX source, and JavaScript outputs do not run. A PDF is written once,
with the mode of every other file (:func:`ceremony.fs.write_once`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from ceremony.clock import current
from ceremony.errors import InputError, StateError
from ceremony.fs import write_once

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
        printed = Path(scratch) / "printed.pdf"
        if renderer == "chromium":
            _print_chromium(html, printed, Path(scratch))
        else:
            _print_weasyprint(html, printed)
        _write_pdf(out, printed.read_bytes())
    return out


def _write_pdf(out: Path, data: bytes) -> None:
    """The finished PDF at ``out``: exclusive (never replaces a file that appeared meanwhile), never through a
    link, with the mode every other file of a pack or run has (0644), whatever the umask."""
    try:
        write_once(out, data, what="PDFs")
    except StateError:
        raise InputError(f"{out} already exists: not overwriting it") from None


# --- archival PDFs: the evidence pack's report and notebooks ------------------------------------------------
ARCHIVAL_VARIANT = "pdf/a-3b"
"""ISO 19005-3 level B: a PDF/A that may carry any file as an associated file (AF, with its AFRelationship)."""

AF_RELATIONSHIPS = ("Source", "Data", "Alternative", "Supplement", "Unspecified")
"""The AFRelationship values of ISO 32000-2 7.11.3 (Table 43) that PDF/A-3 accepts."""

GENERATOR = "S1SPKI ceremony workbench"


@dataclass(frozen=True)
class Attached:
    """A file an archival PDF carries as an associated file: its name in the PDF, its bytes, what it is and how it
    relates to the document (``Data``: what the document's tables show; ``Supplement``: evidence beside it)."""

    name: str
    data: bytes
    description: str
    relationship: str = "Supplement"

    def __post_init__(self) -> None:
        if self.relationship not in AF_RELATIONSHIPS:
            raise InputError(
                f"attachment {self.name}: relationship must be one of {', '.join(AF_RELATIONSHIPS)} "
                f"(got {self.relationship!r})"
            )


@dataclass(frozen=True)
class PrintedDocument:
    """What an archival PDF says about itself: its title (also at the foot of each page), the running header, the
    document information (author, subject, keywords, when it was made) and the files it carries."""

    title: str
    header: str
    author: str | None = None
    subject: str | None = None
    keywords: tuple[str, ...] = ()
    #: When it was made (default: now, by the workbench's clock): the PDF's dates and its attachments'.
    created: datetime | None = None
    attachments: tuple[Attached, ...] = ()
    #: The assessment report's own styles (title page, findings blocks).
    report: bool = False


def _css_string(text: str) -> str:
    """``text`` as a CSS string (CSS Syntax 4.3.5) on one line: quotes and backslashes escaped, and ``<`` as its
    code point, so that no text closes the ``<style>`` element it stands in."""
    cleaned = " ".join(text.split())
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ") + '"'


def _page_css(doc: PrintedDocument) -> str:
    """The page margins' text: the running header on the left at the top, the title at the foot."""
    font = 'font: 6.5pt "DejaVu Sans", sans-serif; color: #444;'
    return (
        f"@page {{ @top-left {{ content: {_css_string(doc.header)}; {font} }} "
        f"@bottom-left {{ content: {_css_string(doc.title)}; {font} color: #666; }} }}"
    )


def _template_file(name: str) -> str:
    return resources.files("ceremony.reporting").joinpath("templates", name).read_text(encoding="utf-8")


def print_html(notebook: Path, doc: PrintedDocument, *, hide_code: bool = False) -> str:
    """The notebook as one self-contained HTML page through the print template, ``doc``'s metadata in its head."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.read(str(notebook), as_version=4)  # type: ignore[no-untyped-call,unused-ignore]
    except (OSError, ValueError) as exc:  # nbformat's read errors are ValueErrors
        raise InputError(f"{notebook}: not a readable notebook: {str(exc).splitlines()[0]}") from None
    name = "ceremony-print.html.j2"
    exporter = HTMLExporter(  # type: ignore[no-untyped-call,unused-ignore]
        template_name="lab",
        template_file=name,
        extra_loaders=[DictLoader({name: _template_file("print.html.j2")})],
        exclude_input=hide_code,
        exclude_input_prompt=hide_code,
        exclude_output_prompt=hide_code,
    )
    created = (doc.created or current().now()).astimezone(timezone.utc)
    meta: dict[str, Any] = {
        "csp": CSP,
        "title": doc.title,
        "author": doc.author,
        "subject": doc.subject,
        "keywords": list(doc.keywords),
        "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "generator": GENERATOR,
        "css": _template_file("print.css"),
        "page_css": _page_css(doc),
        "report": doc.report,
    }
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}, "ceremony": meta})
    return str(body)


def _each_associated_file_once(document: Any, pdf: Any) -> None:
    """The catalogue's AF array lists each associated file once: WeasyPrint 70 adds each file specification twice
    (once from the EmbeddedFiles name tree, once as a Filespec object)."""
    listed = pdf.catalog.get("AF")
    if listed:
        kept = list(dict.fromkeys(listed))
        listed.clear()
        listed.extend(kept)


def render_archival_pdf(notebook: Path, out: Path, doc: PrintedDocument, *, hide_code: bool = False) -> Path:
    """Print an executed ``notebook`` through the print template as a PDF/A-3b at ``out`` (never overwritten), with
    ``doc``'s metadata and attachments, and return ``out``. Always WeasyPrint: Chromium's print gives no PDF/A."""
    if out.exists():
        raise InputError(f"{out} already exists: not overwriting it")
    _write_pdf(out, archival_pdf(notebook, doc, hide_code=hide_code))
    return out


def archival_pdf(notebook: Path, doc: PrintedDocument, *, hide_code: bool = False) -> bytes:
    """The bytes of :func:`render_archival_pdf`'s PDF/A-3b, written nowhere (for what finishes a document before it
    is written: report.pdf's signature, ``ceremony.reporting.signature``)."""
    if not notebook.is_file():
        raise InputError(f"{notebook}: no such notebook")
    try:
        from weasyprint import HTML, Attachment, URLFetcher  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except (ImportError, OSError) as exc:
        raise StateError(f"WeasyPrint is not usable: {str(exc).splitlines()[0]}") from None
    import io

    names = [a.name for a in doc.attachments]
    if len(set(names)) != len(names):
        raise InputError(f"attachments: each needs a name of its own (got {', '.join(names)})")
    page = print_html(notebook, doc, hide_code=hide_code)
    created = (doc.created or current().now()).astimezone(timezone.utc).replace(tzinfo=None)  # WeasyPrint: naive UTC
    attachments = [  # by name: the EmbeddedFiles name tree's keys are sorted (ISO 32000-1 7.9.6)
        Attachment(file_obj=io.BytesIO(a.data), name=a.name, description=a.description, created=created,
                   modified=created, relationship=a.relationship)
        for a in sorted(doc.attachments, key=lambda a: a.name)
    ]  # fmt: skip
    try:
        data = HTML(string=page, url_fetcher=URLFetcher(allowed_protocols=("file", "data"))).write_pdf(
            pdf_variant=ARCHIVAL_VARIANT, attachments=attachments, finisher=_each_associated_file_once
        )
    except Exception as exc:  # WeasyPrint may raise anything from its layout and font code
        why = (str(exc).splitlines() or [""])[0]
        raise StateError(f"WeasyPrint failed to print the PDF: {type(exc).__name__}: {why}") from None
    return bytes(data)
