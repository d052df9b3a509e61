"""Executed notebook to A4 PDF, checked with poppler's tools on real Chromium and WeasyPrint output.

A renderer or poppler tool that is missing is a skip locally and a failure in CI (.ci/run installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from ceremony.errors import InputError
from ceremony.reporting.notebooks import KERNEL, ipc_kernel_manager
from ceremony.reporting.pdf import RENDERERS, available_renderers, render_pdf

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
