"""An evidence pack held against the workspace's journal now (``evidence verify --against``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ceremony.compliance.anchors import pack_against_journal
from ceremony.model.events import CeremonyApprove
from ceremony.record.transcript import Journal, read_entries
from tests.support.tamper import rewrite


def _journal(path: Path, n: int) -> Journal:
    journal = Journal(path)
    for i in range(n):
        journal.append(
            CeremonyApprove(file=f"f{i}.yaml", sha256="0" * 64, ceremony_id=f"c{i}", type="root-ca", by="bob")
        )
    return journal


@pytest.fixture
def pack(tmp_path: Path) -> tuple[Path, Path]:
    workspace, pack = tmp_path / "ws", tmp_path / "pack"
    workspace.mkdir()
    pack.mkdir()
    _journal(workspace / "journal.jsonl", 3)
    shutil.copy(workspace / "journal.jsonl", pack / "journal.jsonl")
    entries = read_entries(pack / "journal.jsonl")
    anchor = {"workspace": entries[0]["hash"], "entries": 3, "head": entries[-1]["hash"]}
    (pack / "manifest.json").write_text(json.dumps({"journal": anchor}))
    return pack, workspace


def test_a_journal_that_only_grew_extends_the_pack(pack: tuple[Path, Path]) -> None:
    folder, workspace = pack
    _journal(workspace / "journal.jsonl", 2)
    assert pack_against_journal(folder, workspace) is None


def test_a_rechained_journal_contradicts_the_pack(pack: tuple[Path, Path]) -> None:
    folder, workspace = pack
    rewrite(workspace / "journal.jsonl", lambda es: es[1].update(by="alice"))
    assert pack_against_journal(folder, workspace) == (
        "contradicted: its journal entry 2 (ceremony.approve) reads differently in the journal now"
    )


def test_a_shorter_journal_and_another_workspace_contradict_the_pack(pack: tuple[Path, Path], tmp_path: Path) -> None:
    folder, workspace = pack
    rewrite(workspace / "journal.jsonl", lambda es: es.pop())
    assert pack_against_journal(folder, workspace) == "contradicted: it held 3 journal entries; the journal now has 2"
    other = tmp_path / "other"
    other.mkdir()
    _journal(other / "journal.jsonl", 4)
    assert pack_against_journal(folder, other) == f"contradicted: {other} is not the workspace this pack was built from"


def test_a_pack_whose_journal_is_not_the_one_its_manifest_names_is_said_so(pack: tuple[Path, Path]) -> None:
    folder, workspace = pack
    rewrite(folder / "journal.jsonl", lambda es: es.pop())
    assert pack_against_journal(folder, workspace) == (
        "contradicted: the journal in the pack is not the one its manifest names"
    )
