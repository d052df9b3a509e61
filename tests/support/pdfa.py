"""Named shape assertions for the archival PDFs (ISO 19005-3, PDF/A-3b), read with pypdf and poppler's pdffonts.

veraPDF, the reference validator, is Java and on none of the reachable registries (PyPI, Debian, npm), so these
check what level B asks of the files the workbench makes: the identification in the XMP metadata, an output
intent with its ICC profile, every font embedded, no encryption, a file identifier, metadata that agrees with the
document information, and each embedded file an associated file (AF) with its AFRelationship, MIME type and dates.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI must run every PDF/A test (.ci/run installs it)")
    pytest.skip(why)


def pdffonts(path: Path) -> list[dict[str, str]]:
    """Each font of ``path`` as poppler's pdffonts lists it (name, type, emb, sub, uni)."""
    if shutil.which("pdffonts") is None:
        _unavailable("pdffonts is not installed (apt-get install poppler-utils)")
    lines = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()
    rows = []
    for line in lines[2:]:
        # name, type (one or more words), encoding, emb, sub, uni, object id: the flags read from the right
        parts = line.split()
        rows.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4], "uni": parts[-3]})
    return rows


def _xmp(reader: PdfReader) -> str:
    metadata = reader.trailer["/Root"]["/Metadata"].get_object()
    return bytes(metadata.get_data()).decode("utf-8")


def associated_files(path: Path) -> dict[str, dict[str, Any]]:
    """The associated files of ``path`` (the catalogue's AF array) by name: bytes, relationship, MIME type."""
    reader = PdfReader(path)
    found = {}
    listed = list(reader.trailer["/Root"].get("/AF", []))
    assert len({(r.idnum, r.generation) for r in listed}) == len(listed), "an associated file listed twice"
    for ref in listed:
        spec: DictionaryObject = ref.get_object()
        stream = spec["/EF"]["/F"].get_object()
        found[str(spec["/UF"])] = {
            "data": stream.get_data(),
            "relationship": str(spec["/AFRelationship"]),
            "mime": str(stream["/Subtype"]),
            "params": stream["/Params"],
            "description": str(spec.get("/Desc", "")),
        }
    return found


def assert_is_pdfa3b(path: Path) -> None:
    """``path`` makes the claims of a PDF/A-3b and keeps the rules those claims rest on (see the module docstring)."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-1.7\n"), data[:12]
    reader = PdfReader(path)
    assert not reader.is_encrypted
    assert "/ID" in reader.trailer and len(reader.trailer["/ID"]) == 2  # ISO 19005-1 6.1.3, kept by -3
    xmp = _xmp(reader)
    assert re.search(r'pdfaid:part="3"|<pdfaid:part>3</pdfaid:part>', xmp), xmp
    assert re.search(r'pdfaid:conformance="B"|<pdfaid:conformance>B</pdfaid:conformance>', xmp), xmp
    root = reader.trailer["/Root"]
    [intent] = [i.get_object() for i in root["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/Type"] == "/OutputIntent"
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3 and profile.get_data()[36:40] == b"acsp"  # an RGB ICC profile (ICC.1 7.2.5)
    fonts = pdffonts(path)
    assert fonts, "no font at all"
    assert [f["name"] for f in fonts if f["emb"] != "yes"] == []
    info = reader.metadata
    assert info is not None and info.title and info.title in xmp  # document information agrees with the XMP
    if info.author:
        assert info.author in xmp
    assert "/JavaScript" not in str(root.get("/Names", {})) and "/OpenAction" not in root
    embedded = root.get("/Names", {}).get("/EmbeddedFiles")
    names = embedded.get_object()["/Names"][0::2] if embedded is not None else []
    carried = associated_files(path)
    assert [str(n) for n in names] == sorted(carried)  # every embedded file is associated; the name tree sorted
    for name, af in carried.items():
        assert af["relationship"] in ("/Source", "/Data", "/Alternative", "/Supplement", "/Unspecified"), name
        assert af["mime"].count("#2f") == 1 or "/" in af["mime"][1:], (name, af["mime"])
        assert "/ModDate" in af["params"], name


def landscape_pages(path: Path) -> list[int]:
    """The 1-based numbers of ``path``'s landscape pages (A4 on its side)."""
    pages = PdfReader(path).pages
    return [i for i, page in enumerate(pages, start=1) if float(page.mediabox.width) > float(page.mediabox.height)]
