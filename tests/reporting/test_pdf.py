"""Executed notebook to A4 PDF, checked with poppler's tools on real Chromium and WeasyPrint output.

A renderer or poppler tool that is missing is a skip locally and a failure in CI (.ci/run installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

from ceremony.errors import InputError
from ceremony.reporting.notebooks import KERNEL, ipc_kernel_manager
from ceremony.reporting.pdf import (
    RENDERERS,
    Attached,
    PrintedDocument,
    _css_string,
    available_renderers,
    render_archival_pdf,
    render_pdf,
)
from tests.support.pdfa import assert_is_pdfa3b, associated_files, landscape_pages

HEADING = "Quarterly Key Inventory"
SERIAL = "7F3A9C21"
CODE_NAME = "zebra_frame"  # appears only in code, never in an output
TITLE = "Inventory report 2026-Q1"

CELLS = [
    ("markdown", f"# {HEADING}\n\nKeys held at the end of the quarter."),
    (
        "code",
        "import pandas as pd\n"
        f"{CODE_NAME} = pd.DataFrame({{'serial': ['{SERIAL}', 'B0B0CAFE'], 'holder': ['alice', 'bob'], "
        "'days': [42, 365]})\n"
        f"{CODE_NAME}",
    ),
    (
        "code",
        "import io\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from IPython.display import Image, display\n"
        "fig, ax = plt.subplots(figsize=(5, 3))\n"
        "ax.bar(['alice', 'bob'], [42, 365])\n"
        "buf = io.BytesIO()\n"
        "fig.savefig(buf, format='png', dpi=80)  # 400 x 240 pixels\n"
        "display(Image(data=buf.getvalue()))",
    ),
]


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI must run every PDF export test (.ci/run installs it)")
    pytest.skip(why)


def _poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        _unavailable(f"{tool} is not installed (apt-get install poppler-utils)")
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test notebook, executed by a real kernel: a DataFrame (text/html) and a plot (image/png)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(new(source))
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name=KERNEL, kernel_manager_class=ipc_kernel_manager(), timeout=120).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("text/html" in o.get("data", {}) for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)
    path = tmp_path_factory.mktemp("executed") / "inventory.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(params=RENDERERS)
def renderer(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    if name not in available_renderers():
        how = "apt-get install chromium" if name == "chromium" else "pip install weasyprint; apt-get install libpango*"
        _unavailable(f"PDF renderer {name} is not available ({how})")
    return name


@pytest.mark.slow
@pytest.mark.parametrize("hide_code", [True, False], ids=["report", "full"])
def test_pdf_is_a4_with_text_table_and_plot(executed: Path, renderer: str, hide_code: bool, tmp_path: Path) -> None:
    out = tmp_path / "inventory.pdf"
    assert render_pdf(executed, out, hide_code=hide_code, renderer=renderer, title=TITLE) == out
    assert out.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in tmp_path.iterdir()] == ["inventory.pdf"]  # no temporary file left behind

    info = _poppler("pdfinfo", str(out))
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info, re.MULTILINE)
    assert size, info
    assert abs(float(size[1]) - 595.3) < 2 and abs(float(size[2]) - 841.9) < 2, info
    assert re.search(rf"^Title:\s+{re.escape(TITLE)}$", info, re.MULTILINE), info

    text = _poppler("pdftotext", "-layout", str(out), "-")
    assert HEADING in text
    assert SERIAL in text and "B0B0CAFE" in text
    assert (CODE_NAME in text) is not hide_code
    assert ("In [" in text) is not hide_code
    assert ("Out[" in text) is not hide_code

    rows = _poppler("pdfimages", "-list", str(out)).splitlines()[2:]
    plots = [r.split() for r in rows if r.split()[2] == "image" and (r.split()[3], r.split()[4]) == ("400", "240")]
    assert plots, "\n".join(rows)


@pytest.mark.slow
def test_auto_picks_the_first_available_renderer(executed: Path, tmp_path: Path) -> None:
    if not available_renderers():
        _unavailable("no PDF renderer is available (apt-get install chromium)")
    out = render_pdf(executed, tmp_path / "auto.pdf", hide_code=True)
    assert HEADING in _poppler("pdftotext", str(out), "-")


def test_available_renderers_is_an_ordered_subset() -> None:
    names = available_renderers()
    assert names == [n for n in RENDERERS if n in names]


def test_existing_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    out.write_bytes(b"earlier evidence")
    with pytest.raises(InputError, match="already exists"):
        render_pdf(tmp_path / "any.ipynb", out)
    assert out.read_bytes() == b"earlier evidence"


def test_unknown_renderer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'wkhtmltopdf'"):
        render_pdf(tmp_path / "any.ipynb", tmp_path / "out.pdf", renderer="wkhtmltopdf")
    assert not (tmp_path / "out.pdf").exists()


def test_missing_notebook_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such notebook"):
        render_pdf(tmp_path / "absent.ipynb", tmp_path / "out.pdf")
    assert list(tmp_path.iterdir()) == []


def test_not_a_notebook_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    if not available_renderers():
        _unavailable("no PDF renderer is available (apt-get install chromium)")
    with pytest.raises(InputError, match="not a readable notebook"):
        render_pdf(bad, tmp_path / "out.pdf")
    assert [p.name for p in tmp_path.iterdir()] == ["bad.ipynb"]


# --- archival PDFs: the print template, PDF/A-3b, associated files ---------------------------------------------
def _weasyprint() -> None:
    if "weasyprint" not in available_renderers():
        _unavailable("WeasyPrint is not usable (pip install weasyprint; apt-get install libpango-1.0-0)")


def _shown_notebook(path: Path, *parts: tuple[str, str]) -> Path:
    """A notebook whose outputs are given (MIME type, content), as the package's Shown values display them."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {HEADING}"))
    for mime, content in parts:
        cell = nbformat.v4.new_code_cell("shown")
        cell.outputs = [nbformat.v4.new_output("display_data", data={mime: content})]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


DOCUMENT = PrintedDocument(
    title=TITLE,
    header='Evidence pack 20261201T100000Z \u00b7 verdict: "approved" </style>',
    author="Victor Varga (victor)",
    subject="What the quarter's inventory holds",
    keywords=("KEY-01", "CRT-06"),
    created=datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc),
    attachments=(
        Attached("findings.json", b'{"findings": []}', "findings.json: every finding", "Data"),
        Attached("s1sp-root.pem", b"-----BEGIN CERTIFICATE-----\n", "artifacts/cas/s1sp-root.pem: a CA"),
    ),
)


@pytest.mark.slow
def test_an_archival_pdf_is_pdfa_3b_with_its_metadata_and_associated_files(executed: Path, tmp_path: Path) -> None:
    _weasyprint()
    out = render_archival_pdf(executed, tmp_path / "report.pdf", DOCUMENT, hide_code=True)
    assert_is_pdfa3b(out)
    assert out.stat().st_mode & 0o777 == 0o644 and [p.name for p in tmp_path.iterdir()] == ["report.pdf"]
    info = _poppler("pdfinfo", str(out))
    for field, value in (("Title", TITLE), ("Author", "Victor Varga (victor)"), ("Keywords", "KEY-01, CRT-06"),
                         ("Subject", "What the quarter's inventory holds"), ("Producer", "WeasyPrint")):  # fmt: skip
        assert re.search(rf"^{field}:\s+{re.escape(value)}", info, re.MULTILINE), (field, info)
    assert re.search(r"^CreationDate:\s+Tue Dec  1 10:00:00 2026 UTC$", info, re.MULTILINE), info  # the given time
    carried = associated_files(out)
    assert {name: af["data"] for name, af in carried.items()} == {a.name: a.data for a in DOCUMENT.attachments}
    assert carried["findings.json"]["relationship"] == "/Data" and carried["findings.json"]["mime"] == (
        "/application/json"
    )
    assert carried["s1sp-root.pem"]["relationship"] == "/Supplement"
    text = _poppler("pdftotext", str(out), "-")
    assert HEADING in text and SERIAL in text and CODE_NAME not in text
    # The running header (quotes and markup taken literally) and the page numbers, on every page.
    pages = text.split("\f")[:-1]
    assert all('verdict: "approved" </style>' in page and f"of {len(pages)}" in page for page in pages), text
    assert "page 1 of" in pages[0] and TITLE in pages[0]
    with pytest.raises(InputError, match="already exists"):
        render_archival_pdf(executed, out, DOCUMENT)


@pytest.mark.slow
def test_an_archival_pdf_sets_a_wide_table_on_a_landscape_page_and_long_identifiers_within_the_page(
    tmp_path: Path,
) -> None:
    import pandas as pd

    from ceremony.reporting.cells import WIDE_COLUMNS, report_html

    _weasyprint()
    long_id = "ceremony-" + "x" * 150  # no space to break at
    columns = range(WIDE_COLUMNS + 2)
    wide = pd.DataFrame([[f"value {i}" for i in columns]], columns=[f"column {i}" for i in columns])
    narrow = pd.DataFrame({"ceremony": [long_id], "sealed": [None], "entries": [3.0]})
    notebook = _shown_notebook(tmp_path / "wide.ipynb", ("text/html", report_html(narrow)),
                               ("text/html", report_html(wide)), ("text/markdown", "after the wide table"))  # fmt: skip
    out = render_archival_pdf(notebook, tmp_path / "wide.pdf", DOCUMENT)
    assert landscape_pages(out) == [2]  # the wide table alone; the page after it is portrait again
    pages = _poppler("pdftotext", "-raw", str(out), "-").split("\f")  # -raw: a line-end hyphen stays one
    assert "column 0" in pages[1] and "after the wide table" in pages[2]
    squeezed = "".join(pages[0].split())
    assert long_id in squeezed and "\u2014" in pages[0] and "3.0" not in pages[0]  # broken across lines, all there
    # Every character on the page: nothing is cut at the margin (pdftotext -bbox would show x beyond the page).
    bbox = _poppler("pdftotext", "-bbox", "-f", "1", "-l", "1", str(out), "-")
    xs = [float(x) for x in re.findall(r'xMax="([\d.]+)"', bbox)]
    assert xs and max(xs) <= 595.3 - 15 / 25.4 * 72 + 1, max(xs)


def test_two_attachments_of_one_name_are_refused(executed: Path, tmp_path: Path) -> None:
    twice = replace(DOCUMENT, attachments=DOCUMENT.attachments[:1] * 2)
    with pytest.raises(InputError, match="attachments: each needs a name of its own"):
        render_archival_pdf(executed, tmp_path / "twice.pdf", twice)
    assert not (tmp_path / "twice.pdf").exists()


def test_a_css_string_quotes_what_it_carries() -> None:
    assert _css_string('a "b" \\ <c>\nd') == '"a \\"b\\" \\\\ \\3c c> d"'


def test_an_associated_file_relationship_is_one_iso_32000_names() -> None:
    with pytest.raises(InputError, match="relationship must be one of Source, Data, Alternative, Supplement"):
        Attached("x.json", b"{}", "x", "Evidence")
