"""Hostile input (property tests: only CeremonyError subclasses escape, a rejection writes nothing),
paths that try to leave their folder, and a clock that reads earlier than the log it writes to."""

from __future__ import annotations

import json
import shutil
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ceremony.compliance.pack import verify_pack
from ceremony.errors import CeremonyError, ConfigError, StateError
from ceremony.issue.batch import read_device_list, validate_row
from ceremony.model.ceremony_file import load_ceremony
from ceremony.record.transcript import Journal, verify_transcript
from tests.support.ceremony_files import CEREMONIES, device_list
from tests.support.events import note

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EXAMPLE = (CEREMONIES / "root-ca.yaml").read_bytes()


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


_edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)


@FUZZ
@given(edits=_edits)
def test_a_mutated_ceremony_file_is_refused_with_a_ceremony_error(tmp_path: Path, edits: list[tuple[int, int]]) -> None:
    path = tmp_path / "ceremony.yaml"
    path.write_bytes(_mutate(EXAMPLE, edits))
    try:
        load_ceremony(path)
    except CeremonyError as exc:
        assert "\n" not in exc.message.strip()


@FUZZ
@given(text=st.text(alphabet=st.sampled_from("0123456789ABCDEFabcdef,./\\\n -_ds.kacsr\"'"), max_size=300))
def test_any_device_list_is_read_or_refused_and_every_row_is_checked(tmp_path: Path, text: str) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("eui64,usage,csr\n" + text)
    try:
        rows = list(read_device_list(path).rows())
    except CeremonyError:
        return
    for row in rows:
        outcome = validate_row(str(tmp_path), row, ca_point=None)
        assert isinstance(outcome, bytes) or outcome.reason


def test_csr_paths_that_leave_the_list_folder_are_rejected(tmp_path: Path) -> None:
    good = device_list(tmp_path / "list", 1)
    outside = tmp_path / "outside.der"
    shutil.copy2(next((tmp_path / "list" / "csr").glob("*-ds.der")), outside)
    rows = good.read_text().splitlines()
    eui = rows[1].split(",")[0]
    for path in ("../outside.der", str(outside), "csr/../../outside.der"):
        (tmp_path / "list" / "devices.csv").write_text(f"eui64,usage,csr\n{eui},ds,{path}\n")
        (row,) = read_device_list(tmp_path / "list" / "devices.csv").rows()
        outcome = validate_row(str(tmp_path / "list"), row, ca_point=None)
        assert not isinstance(outcome, bytes) and "leaves the device list's folder" in outcome.reason, path


@pytest.mark.parametrize(("field", "value"), [("backup", "../elsewhere/root.wrapped"), ("backup", "/etc/passwd")])
def test_ceremony_file_paths_stay_in_the_workspace(tmp_path: Path, field: str, value: str) -> None:
    text = (CEREMONIES / "key-restore.yaml").read_text()
    lines = [f"{field}: {value}" if line.startswith(f"{field}:") else line for line in text.splitlines()]
    path = tmp_path / "restore.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"{field}: must be a path inside the workspace"):
        load_ceremony(path)


def test_outputs_named_out_of_the_workspace_are_refused(tmp_path: Path) -> None:
    text = (CEREMONIES / "root-ca.yaml").read_text().replace("artifacts/cas/s1sp-root.pem", "../../tmp/root.pem")
    path = tmp_path / "root.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="outputs: must be a path inside the workspace"):
        load_ceremony(path)


def test_a_clock_behind_the_log_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(note("first"), now=journal.clock.now() + timedelta(hours=1))  # written by a clock ahead
    before = journal.path.read_bytes()
    with pytest.raises(StateError, match="before the last entry of journal.jsonl"):
        journal.append(note("second"))
    assert journal.path.read_bytes() == before
    journal.append(note("third"), now=journal.clock.now() + timedelta(hours=2))  # explicit times are the caller's


@pytest.fixture(scope="module")
def sealed_transcript(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tests.support.ceremony_files import live_workspace, run_examples

    base = tmp_path_factory.mktemp("transcript")
    outcome = run_examples(live_workspace(base / "ws", "software"), "root-ca")["root-ca"]
    return outcome.transcript.read_bytes()


@FUZZ
@given(edits=_edits)
def test_verify_transcript_reports_and_never_crashes(
    tmp_path: Path, sealed_transcript: bytes, edits: list[tuple[int, int]]
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(_mutate(sealed_transcript, edits))
    report = verify_transcript(path)
    assert not report.ok or path.read_bytes() == sealed_transcript  # only the unchanged transcript verifies


@FUZZ
@given(edits=_edits)
def test_verify_pack_rejects_a_mutated_manifest_cleanly(tmp_path: Path, edits: list[tuple[int, int]]) -> None:
    pack = tmp_path / "pack"
    pack.mkdir(exist_ok=True)
    (pack / "a.txt").write_text("evidence")
    manifest = json.dumps({"files": [{"path": "a.txt", "sha256": "0" * 64, "size": 8}]}).encode()
    (pack / "manifest.json").write_bytes(_mutate(manifest, edits))
    try:
        report = verify_pack(pack)
    except CeremonyError:
        return
    assert not report.ok and report.message


def test_two_ceremonies_on_one_token_cannot_run_at_once_and_a_stale_lock_is_reported(tmp_path: Path) -> None:
    import subprocess

    from ceremony import procedures
    from tests.support.ceremony_files import approve, live_workspace, run_examples, variant

    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    approve(ws, CEREMONIES / "root-ca.yaml")
    first = procedures.begin(CEREMONIES / "root-ca.yaml", ws)
    change = {"ceremony_id": "root-ca-2026-12b", "ca": "s1sp-root-b", "key.label": "ca-s1sp-root-b",
              "outputs.certificate": "artifacts/cas/s1sp-root-b.pem",
              "outputs.fingerprint_statement": "artifacts/cas/s1sp-root-b.fingerprint.txt"}  # fmt: skip
    other = variant(tmp_path / "files", "root-ca.yaml", change)
    approve(ws, other)
    with pytest.raises(StateError, match="token s1sp-ca-token is in use by ceremony root-ca-2026-12 .root-ca, pid"):
        procedures.begin(other, ws)
    assert not (ws / "transcripts" / "root-ca-2026-12b.jsonl").exists()  # refused before anything was written
    for step in ("activate", "generate-key", "issue-certificate", "check-naming", "fingerprint"):
        first.step(step)
    first.finish()  # sealing frees the token
    first.ws.close()
    lock = ws / "locks" / "token-s1sp-ca-token.lock"
    gone = subprocess.Popen(["true"])
    gone.wait()
    owner = {"ceremony_id": "x-1", "type": "root-ca", "pid": gone.pid, "host": socket.gethostname(),
             "since": "2026-11-30T00:00:00+00:00"}  # fmt: skip
    lock.write_text(json.dumps(owner))
    with pytest.raises(StateError, match=r"a stale lock: ceremony x-1 .* \(its process is gone\)"):
        procedures.begin(other, ws)
    assert lock.exists()  # reported, not broken
    lock.unlink()
    procedures.begin(other, ws).ws.close()


def test_issuance_with_a_clock_behind_the_journal_is_refused_before_signing(ca_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ceremony.issue.batch import issue_batch
    from ceremony.issue.crl import publish_crl

    ca_workspace.journal.append(note("clock ahead"), now=ca_workspace.clock.now() + timedelta(hours=1))
    artifacts = sorted(p for p in (ca_workspace.root / "artifacts").rglob("*") if p.is_file())
    count = ca_workspace.inventory.count()
    with pytest.raises(StateError, match="before the last entry of journal.jsonl"):
        issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device",
                    devices=device_list(tmp_path / "list", 1), approved_by="bob", progress=False)  # fmt: skip
    with pytest.raises(StateError, match="before the last entry"):
        publish_crl(ca_workspace, "issuing", by="bob")
    assert sorted(p for p in (ca_workspace.root / "artifacts").rglob("*") if p.is_file()) == artifacts
    assert ca_workspace.inventory.count() == count
