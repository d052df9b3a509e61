"""Signed checkpoints of the journal: written beside it, and every way the journal can part from them found."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.model.events import CeremonyApprove
from ceremony.record.checkpoints import CHECKPOINTS_FILE, checkpoint_problems, signed_bytes, write_checkpoint
from ceremony.record.transcript import Journal, read_entries
from tests.support.tamper import overwrite, rewrite

KEY = ec.generate_private_key(ec.SECP256R1())


def _spki(key: Any) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _approve(journal: Journal, n: int) -> None:
    for i in range(n):
        journal.append(
            CeremonyApprove(file=f"f{i}.yaml", sha256="0" * 64, ceremony_id=f"c{i}", type="root-ca", by="bob")
        )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / "journal.jsonl")
    _approve(journal, 3)
    write_checkpoint(journal, KEY, key_label="ca-root", reason="crl root #1 published", anchors={"x": "1"})
    _approve(journal, 2)
    return journal


def _problems(journal: Journal, keys: set[str] | None = None) -> list[tuple[str, str]]:
    found = checkpoint_problems(
        read_entries(journal.path), read_entries(journal.path.parent / CHECKPOINTS_FILE), keys or {_spki(KEY)}
    )
    return [(p.subject, p.code) for p in found]


def test_a_checkpoint_signs_the_head_it_follows_and_is_kept_in_both_places(journal: Journal) -> None:
    entries = read_entries(journal.path)
    (checkpoint,) = [e for e in entries if e["event"] == "journal.checkpoint"]
    assert (checkpoint["checkpoint"], checkpoint["entries"], checkpoint["head"]) == (1, 3, entries[2]["hash"])
    assert checkpoint["workspace"] == entries[0]["hash"]
    KEY.public_key().verify(bytes.fromhex(checkpoint["signature"]), signed_bytes(checkpoint), ec.ECDSA(hashes.SHA256()))
    assert signed_bytes(checkpoint).startswith(b"S1SPKI journal checkpoint v1\n")
    (copy,) = read_entries(journal.path.parent / CHECKPOINTS_FILE)
    assert copy["signature"] == checkpoint["signature"]
    assert _problems(journal) == []


def test_an_entry_the_checkpoint_covers_rewritten_and_rechained_is_found(journal: Journal) -> None:
    rewrite(journal.path, lambda es: es[1].update(by="alice"))
    assert _problems(journal) == [("checkpoint 1", "rewritten")]


def test_entries_after_the_checkpoint_may_change_without_it_seeing(journal: Journal) -> None:
    rewrite(journal.path, lambda es: es[-1].update(by="alice"))
    assert _problems(journal) == []  # what the next checkpoint (or pack) anchors; docs/security.md says so


def test_a_journal_cut_back_before_its_checkpoint_is_found(journal: Journal) -> None:
    lines = journal.path.read_bytes().splitlines(keepends=True)
    overwrite(journal.path, b"".join(lines[:2]))
    assert _problems(journal) == [("checkpoint 1", "journal"), ("checkpoint 1", "truncated")]


def test_a_checkpoint_removed_from_the_journal_is_still_in_the_file(journal: Journal) -> None:
    rewrite(journal.path, lambda es: es.pop(3))
    assert ("checkpoint 1", "journal") in _problems(journal)


def test_a_forged_signature_and_a_foreign_key_are_found(journal: Journal, tmp_path: Path) -> None:
    assert _problems(journal, keys={"0" * 64}) == [("checkpoint 1", "key")]

    def forge(entries: list[dict[str, Any]]) -> None:
        entries[0]["head"] = "f" * 64

    rewrite(tmp_path / CHECKPOINTS_FILE, forge)
    assert ("checkpoint 1", "signature") in _problems(journal)
    assert ("checkpoint 1", "differ") in _problems(journal)


def test_a_checkpoint_dated_away_from_its_signing_time_is_found(journal: Journal) -> None:
    rewrite(journal.path, lambda es: es[3].update(time="2020-01-01T00:00:00+00:00"))
    assert ("checkpoint 1", "time") in _problems(journal)


def test_an_entry_it_covers_dated_after_the_checkpoint_is_found_and_named(journal: Journal) -> None:
    # Not rechained: the chain (LOG-01) breaks, the head the checkpoint signed stays; the time is what is off here.
    rewrite(journal.path, lambda es: es[1].update(time="2999-01-01T00:00:00+00:00"), chain=False)
    found = checkpoint_problems(
        read_entries(journal.path), read_entries(journal.path.parent / CHECKPOINTS_FILE), {_spki(KEY)}
    )
    assert [(p.subject, p.code, p.message) for p in found if p.code == "time"] == [
        ("checkpoint 1", "time", "entry 2 is dated after checkpoint 1, which covers it")
    ]


def test_a_token_that_will_not_sign_leaves_the_journal_unanchored_not_the_operation_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ceremony.errors import TokenError
    from ceremony.record import checkpoints

    def spent(*_: Any) -> bytes:
        raise TokenError("the activation session has used its operations")

    monkeypatch.setattr(checkpoints, "sign", spent)
    journal = Journal(tmp_path / "journal.jsonl")
    _approve(journal, 1)
    assert write_checkpoint(journal, KEY, key_label="ca-root", reason="crl") is None
    assert len(read_entries(journal.path)) == 1 and not (tmp_path / CHECKPOINTS_FILE).exists()
