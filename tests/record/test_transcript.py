"""Hash-chained logs: the operations journal and sealed ceremony transcripts; every tampering is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.cli.main import main
from ceremony.errors import StateError
from ceremony.record.transcript import (
    GENESIS,
    Journal,
    Transcript,
    read_aloud,
    read_entries,
    verify_chain,
    verify_transcript,
)
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


def _torn(journal: Journal) -> None:
    """The journal's last entry cut short, as a crash (or a reader's bad timing) leaves it."""
    journal.path.write_bytes(journal.path.read_bytes()[:-40])


def test_a_torn_last_line_is_named_by_every_reader_and_refused_by_an_append(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    _torn(journal)
    assert verify_chain(journal.path).error == "line 3 has no end of line (an append was cut short)"
    assert verify_chain(journal.path).entries == 2
    with pytest.raises(StateError, match=r"line 3 has no end of line") as raised:
        read_entries(journal.path)
    assert "\n" not in str(raised.value)
    with pytest.raises(StateError, match="its last line has no end of line"):
        journal.last_entry()
    with pytest.raises(StateError, match="its last line has no end of line"):
        journal.append(note("after the tear"))  # chained onto a fragment, the log would be broken for good
    assert verify_chain(journal.path).entries == 2


def test_a_last_line_that_is_not_an_object_is_a_state_error(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 1)
    with journal.path.open("ab") as fh:
        fh.write(b"[1, 2]\n")
    with pytest.raises(StateError, match="its last line is not a JSON object"):
        journal.last_entry()
    with journal.path.open("ab") as fh:
        fh.write(b"\xff{\n")
    with pytest.raises(StateError, match="its last line is not a JSON entry"):
        journal.last_entry()


_READER = """
import json, sys
from pathlib import Path
from ceremony.record.transcript import Journal, read_entries, verify_chain
journal = Journal(Path(sys.argv[1]))
print("ready", flush=True)
last = journal.last_entry()
print(json.dumps({"last": last, "entries": len(read_entries(journal.path)), "chain": verify_chain(journal.path).error}))
"""


def test_readers_wait_for_an_append_under_way_and_never_see_half_of_it(tmp_path: Path) -> None:
    """The race CI met: a process polled the journal's last entry while another appended, and read a line
    half written. An append holds the log's lock from before its first byte to after its last; every reader
    takes the same lock shared, so it sees the log before the append or after it, never between. (The reader
    is a process, as in CI; no thread waits with a timeout, which libfaketime's timed waits do not honour.)"""
    journal = _journal(tmp_path, 2)
    head = journal.last_entry()
    line = journal.path.read_bytes().splitlines(keepends=True)[-1]
    with journal._locked():  # what Journal.append holds while it writes
        fd = os.open(journal.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line[:20])
            reader = subprocess.Popen(
                [sys.executable, "-c", _READER, str(journal.path)], stdout=subprocess.PIPE, text=True
            )
            assert reader.stdout is not None and reader.stdout.readline() == "ready\n"
            time.sleep(0.3)
            assert reader.poll() is None, "a reader went on while an append was half written"
            os.write(fd, line[20:])
        finally:
            os.close(fd)
    out, _ = reader.communicate(timeout=60)
    seen = json.loads(out)
    # The re-written line repeats the last entry (its seq too): what matters is that it was read whole.
    assert seen == {"last": head, "entries": 3, "chain": "line 3: sequence 2 after 2"}


def test_a_copy_without_its_lock_file_is_read_without_one(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 2)
    copy = tmp_path / "pack" / "journal.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(journal.path.read_bytes())
    assert not (copy.parent / "journal.jsonl.lock").exists()
    assert verify_chain(copy).ok and len(read_entries(copy)) == 2


def test_a_lock_file_reached_through_a_link_is_refused_in_one_line(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 1)
    lock = tmp_path / "journal.jsonl.lock"
    lock.unlink()
    lock.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_bytes(b"")
    with pytest.raises(StateError, match="cannot open the log's lock") as raised:
        read_entries(journal.path)
    assert "\n" not in str(raised.value)


def test_a_fifo_for_a_lock_file_is_refused_without_waiting(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 1)
    lock = tmp_path / "journal.jsonl.lock"
    lock.unlink()
    os.mkfifo(lock)
    with pytest.raises(StateError, match="cannot open the log's lock: .* must be a regular file"):
        journal.last_entry()


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
