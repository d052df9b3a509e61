"""File lists of packs and backups: every file with its SHA-256 and size, and a hostile list refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ceremony.record.manifest import file_list, parse_file_list


def _tree(root: Path) -> None:
    (root / "report" / "pdf").mkdir(parents=True)
    (root / "b.txt").write_bytes(b"bee")
    (root / "a.json").write_bytes(b"{}")
    (root / "report" / "pdf" / "r.pdf").write_bytes(b"%PDF-1.7 " * 100)
    (root / "empty").mkdir()


def _entry(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_file_list_lists_every_file_sorted_with_hash_and_size(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert file_list(tmp_path) == [
        _entry("a.json", b"{}"),
        _entry("b.txt", b"bee"),
        _entry("report/pdf/r.pdf", b"%PDF-1.7 " * 100),
    ]


def test_file_list_skips_exactly_the_paths_it_is_told(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "report" / "a.json").write_bytes(b"[]")
    listed = [e["path"] for e in file_list(tmp_path, skip=("a.json", "report/pdf/r.pdf"))]
    assert listed == ["b.txt", "report/a.json"]


def test_file_list_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    (tmp_path / "only" / "directories").mkdir(parents=True)
    assert file_list(tmp_path) == []


def test_a_file_list_round_trips_through_parse(tmp_path: Path) -> None:
    _tree(tmp_path)
    files = file_list(tmp_path)
    parsed = parse_file_list(json.dumps({"format": "x", "files": files}).encode())
    assert parsed == {e["path"]: e for e in files}


def test_an_empty_list_names_nothing() -> None:
    assert parse_file_list(b'{"files": []}') == {}


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"\xff\xfe\x00", b"[]", b'"files"', b"42", b"null", b'{"file": []}', b'{"files": [}'],
    ids=["empty", "text", "not-utf8", "a-list", "a-string", "a-number", "null", "no-files-key", "truncated"],
)
def test_what_is_not_a_manifest_is_said_so(data: bytes) -> None:
    assert parse_file_list(data) == "not a manifest this tool reads"


GOOD = {"path": "a.json", "sha256": "00" * 32, "size": 2}


@pytest.mark.parametrize(
    "files",
    [
        {"a.json": GOOD},
        "a.json",
        [GOOD, "b.txt"],
        [{"sha256": "00" * 32, "size": 2}],
        [{"path": "a.json", "size": 2}],
        [{"path": "a.json", "sha256": "00" * 32}],
        [{"path": 7, "sha256": "00" * 32, "size": 2}],
        [{"path": "a.json", "sha256": None, "size": 2}],
        [{"path": "a.json", "sha256": "00" * 32, "size": "2"}],
        [{"path": "a.json", "sha256": "00" * 32, "size": 2.0}],
    ],
    ids=[
        "a-mapping",
        "a-string",
        "a-string-entry",
        "no-path",
        "no-sha256",
        "no-size",
        "path-not-text",
        "sha256-null",
        "size-text",
        "size-float",
    ],
)
def test_an_entry_without_its_fields_is_refused(files: Any) -> None:
    assert parse_file_list(json.dumps({"files": files}).encode()) == "an entry lacks its path, sha256 or size"


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "report/../../outside", "..", "", "a/.."])
def test_a_path_outside_the_directory_is_refused(path: str) -> None:
    files = [GOOD, {"path": path, "sha256": "00" * 32, "size": 1}]
    assert parse_file_list(json.dumps({"files": files}).encode()) == f"lists {path!r}, which is outside its directory"


@pytest.mark.parametrize("path", ["report/r.pdf", "./a.json", "dots..in..name", ".hidden"])
def test_a_path_inside_the_directory_is_accepted(path: str) -> None:
    listed = parse_file_list(json.dumps({"files": [{"path": path, "sha256": "00" * 32, "size": 1}]}).encode())
    assert isinstance(listed, dict) and list(listed) == [path]
