"""Hash-chained logs: the operations journal and sealed ceremony transcripts; every tampering is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.cli.main import main
from ceremony.record.transcript import GENESIS, Journal, Transcript, read_aloud, verify_chain, verify_transcript
from tests.support.events import note


def _journal(tmp_path: Path, n: int = 3) -> Journal:
    journal = Journal(tmp_path / "journal.jsonl")
    for i in range(n):
        journal.append(note(i))
    return journal


def test_chain_links_and_verifies(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    entries = journal.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == GENESIS and entries[1]["prev"] == entries[0]["hash"]
    status = journal.verify()
    assert status.ok and status.entries == 3 and status.head == entries[-1]["hash"]


def test_edited_line_is_named(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    lines = journal.path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["n"] = 99
    lines[1] = json.dumps(entry)
    journal.path.write_text("\n".join(lines) + "\n")
    status = verify_chain(journal.path)
    assert status.error == "line 2: hash does not match its content"


def test_removed_line_is_named(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    lines = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert verify_chain(journal.path).error == "line 2: sequence 3 after 1"


def test_append_continues_after_reopen(tmp_path: Path) -> None:
    _journal(tmp_path, 2)
    again = Journal(tmp_path / "journal.jsonl")
    again.append(note("later"))
    assert again.verify().ok and again.verify().entries == 3


# --- sealed ceremony transcripts ---------------------------------------------------------


def _sealed(tmp_path: Path, key: object | None = None) -> Transcript:
    transcript = Transcript(tmp_path / "root-2026-01.jsonl")
    transcript.start("root-2026-01", "root-ca", {"file_sha256": "ab" * 32, "rehearsal": False})
    transcript.step("1", "initialise token", actors=["alice"], outputs={"token": "cd" * 32})
    transcript.deviation("badge reader failed", "replaced by sign-in sheet", ["alice", "wendy"])
    transcript.step("2", "generate CA key", actors=["alice", "carol"], details={"key_label": "ca-root"})
    transcript.step("3", "issue root certificate", actors=["alice"], outputs={"root.pem": "ef" * 32})
    transcript.seal(key or ec.generate_private_key(ec.SECP256R1()), key_label="ca-root")
    return transcript


def _lines(t: Transcript) -> list[str]:
    return t.path.read_text().splitlines()


def _write(t: Transcript, lines: list[str]) -> None:
    t.path.write_text("\n".join(lines) + ("\n" if lines else ""))


def test_sealed_transcript_verifies_and_reads_aloud(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = _sealed(tmp_path)
    report = verify_transcript(t.path)
    assert report.ok and report.entries == 6 and report.words is not None and len(report.words.split()) == 8
    assert main(["transcript", "verify", str(t.path)]) == 0
    assert "intact and sealed, 6 entries; read aloud:" in capsys.readouterr().out


# Edits, deletions, insertions, reorderings and truncations of a real ceremony transcript:
# tests/test_procedures.py::test_tampering_with_a_real_sealed_transcript_is_detected.


def test_a_forged_seal_signature_is_detected(tmp_path: Path) -> None:
    t = _sealed(tmp_path)
    lines = _lines(t)
    seal = json.loads(lines[-1])
    seal["signature"] = seal["signature"][:-4] + "0000"
    from ceremony.record.transcript import entry_hash

    seal["hash"] = entry_hash(seal)
    lines[-1] = json.dumps(seal)
    _write(t, lines)
    report = verify_transcript(t.path)
    assert not report.ok and "the seal differs from" in report.message


def test_interrupted_ceremony_is_intact_but_not_sealed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = Transcript(tmp_path / "c.jsonl")
    t.start("c", "root-ca", {})
    t.step("1", "initialise token", actors=["alice"])
    t.step("2", "generate CA key", actors=["alice"])
    assert main(["transcript", "verify", str(t.path)]) == 1
    assert "intact but not sealed (interrupted after step 2)" in capsys.readouterr().out


def test_sealing_twice_and_reusing_an_id_are_refused(tmp_path: Path) -> None:
    from ceremony.errors import StateError

    t = _sealed(tmp_path)
    with pytest.raises(StateError, match="already sealed"):
        t.seal(ec.generate_private_key(ec.SECP256R1()), key_label="x")
    with pytest.raises(StateError, match="a ceremony id is used once"):
        Transcript(t.path).start("root-2026-01", "root-ca", {})


def test_read_aloud_is_stable_and_sensitive() -> None:
    assert read_aloud(b"\x00" * 32) == read_aloud(b"\x00" * 32)
    assert read_aloud(b"\x00" * 32) != read_aloud(b"\x00" * 31 + b"\x01")


@pytest.mark.hsm
def test_a_token_key_seals_the_transcript(tmp_path: Path) -> None:
    from ceremony.keys.pkcs11 import Pkcs11KeyStore, find_softhsm_module, init_softhsm_token

    init_softhsm_token(tmp_path / "tok", tmp_path / "softhsm2.conf", "t", "so-pin-2222", "user-pin-3333")
    store = Pkcs11KeyStore(str(find_softhsm_module()), "t", "user-pin-3333")
    t = _sealed(tmp_path, store.generate("ca-root", "ec-p256"))
    assert verify_transcript(t.path).ok
    store.close()


def test_diff_ignores_times_digests_and_keys_but_not_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    a, b = _sealed(tmp_path / "a"), _sealed(tmp_path / "b")
    assert main(["transcript", "diff", str(a.path), str(b.path)]) == 0
    assert "same steps, actors, parameters and outputs" in capsys.readouterr().out
    c = Transcript(tmp_path / "c" / "root-2026-01.jsonl")
    c.start("root-2026-01", "root-ca", {"file_sha256": "00" * 32, "rehearsal": True})
    c.step("1", "initialise token", actors=["alice"], outputs={"token": "11" * 32})
    c.step("2", "generate CA key", actors=["bob"], details={"key_label": "ca-root"})
    assert main(["transcript", "diff", str(a.path), str(c.path)]) == 1
    out = capsys.readouterr().out
    assert '"rehearsal":true' in out and '"actors":["bob"]' in out and '"event":"deviation"' in out
    assert "11" * 32 not in out
