"""RFC 3161 timestamps from a test TSA on 127.0.0.1 (tests/support/tsa.py; never a network TSA): a token over the
bytes verifies and a token over other bytes fails; a TSA that misbehaves or is out of reach is deferred, and a later
pass stamps what it left, recording when; seals and checkpoints get their tokens, and openssl agrees with them; a
workspace that names no TSA reads and writes nothing for it."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import ConfigError, InputError
from ceremony.model.events import Event
from ceremony.record.checkpoints import CHECKPOINTS_FILE, write_checkpoint
from ceremony.record.timestamps import (
    CHECKPOINT,
    SEAL,
    Authority,
    Deferred,
    SealTimestamp,
    Stamp,
    StampReport,
    TokenCheck,
    check_token,
    check_token_file,
    checkpoint_message,
    load_chain,
    request_stamp,
    seal_timestamp,
    stamp_pending,
    timestamps_log,
    workspace_authority,
)
from ceremony.record.transcript import read_entries
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.tsa import LocalTsa, make_tsa, name_tsa, seal_transcript

KEY = ec.generate_private_key(ec.SECP256R1())
OVER_OTHER_DATA = "it is over other data (its message imprint is not that of what it stamps)"
NOT_YET = "not yet timestamped (the next online step stamps it: `ceremony transcript timestamp`)"


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Workspace]:
    """A test workspace (software store) that names no TSA."""
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    yield ws
    ws.close()


def naming(ws: Workspace, tsa: LocalTsa, timeout: float = 2.0) -> Workspace:
    """``ws`` opened again after its workspace.yaml was made to name ``tsa``."""
    name_tsa(ws.root, tsa, timeout=timeout)
    return Workspace.open(ws.root)


def seal(ws: Workspace, name: str = "token-init-2026-12") -> Path:
    """A sealed transcript of ``ws`` (two entries and its seal)."""
    return seal_transcript(ws.transcripts_dir / f"{name}.jsonl", ws.clock)


def authority(tsa: LocalTsa, timeout: float = 5.0) -> Authority:
    return Authority(tsa.url, load_chain(tsa.tsa.chain), timeout)


def openssl_verify(data: bytes, token: Path, chain: Path, folder: Path) -> str:
    """``openssl ts -verify``'s verdict on ``token`` over ``data`` (written to a file in ``folder``)."""
    (folder / "data.bin").write_bytes(data)
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(folder / "data.bin"), "-in", str(token), "-CAfile", str(chain)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout.strip()


def test_a_token_over_the_bytes_verifies_and_a_token_over_other_bytes_fails(tsa: LocalTsa, tmp_path: Path) -> None:
    stamp = request_stamp(authority(tsa), b"the bytes")
    assert isinstance(stamp, Stamp) and stamp.tsa == "Test TSA"
    chain = load_chain(tsa.tsa.chain)
    good = check_token(stamp.token, b"the bytes", chain)
    gen_time = stamp.gen_time.isoformat().replace("+00:00", "Z")
    # its accuracy (the test TSA states 1 s) and a second for a genTime written in whole seconds
    assert good == TokenCheck(True, f"timestamped by Test TSA at {gen_time}", stamp.gen_time, "Test TSA", 2.0)
    assert check_token(stamp.token, b"other bytes", chain) == TokenCheck(False, OVER_OTHER_DATA)
    foreign = load_chain(make_tsa(tmp_path / "other", "Other TSA").chain)
    assert check_token(stamp.token, b"the bytes", foreign) == TokenCheck(
        False, "its signature does not verify under the TSA chain"
    )
    assert check_token(b"not a token", b"the bytes", chain) == TokenCheck(
        False, "not an RFC 3161 timestamp response (a DER TimeStampResp)"
    )
    assert check_token(stamp.token, b"the bytes", chain, nonce=1) == TokenCheck(False, "its nonce is not the request's")


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("garbage", "answered, but not with a token that verifies: not an RFC 3161 timestamp response (a DER "
                    "TimeStampResp)"),
        ("redirect", "answered with a redirect (HTTP 307), which is never followed"),
        ("refuse", "answered HTTP 503"),
        ("slow", "is out of reach (no answer within 0.5 s)"),
        ("stopped", "is out of reach (connection refused)"),
    ],
)  # fmt: skip
def test_a_tsa_that_misbehaves_or_is_out_of_reach_is_deferred_in_one_line(
    tsa: LocalTsa, behaviour: str, reason: str
) -> None:
    if behaviour == "stopped":
        tsa.stop()
    else:
        tsa.behaviour = behaviour  # type: ignore[assignment]
    assert request_stamp(authority(tsa, timeout=0.5), b"x") == Deferred(f"the TSA at {tsa.url} {reason}")
    assert tsa.requests == (0 if behaviour == "stopped" else 1)  # a redirect is not followed


def test_a_chain_is_checked_before_anything_is_verified_under_it(tsa: LocalTsa, tmp_path: Path) -> None:
    files = tsa.tsa
    cases = {
        "root-only.pem": (files.root.read_bytes(), "its first certificate is no TSA's (RFC 3161 2.3: extendedKeyUsage "
                                                    "timeStamping, critical)"),
        "tsa-only.pem": (files.certificate.read_bytes(), "its last certificate is not a self-signed root (the chain "
                                                          "ends at the root tokens are verified under)"),
        "garbage.pem": (b"no certificate here\n", "not a PEM certificate chain (the TSA's certificate, then its "
                                                  "issuers)"),
    }  # fmt: skip
    other = make_tsa(tmp_path / "other", "Other TSA")
    cases["mixed.pem"] = (
        files.certificate.read_bytes() + other.root.read_bytes(),
        "certificate 1 is not issued by certificate 2 (the TSA's first, then its issuers)",
    )
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as refused:
            load_chain(tmp_path / name)
        assert refused.value.message == f"{tmp_path / name}: {message}"
    assert load_chain(files.chain).name == "Test TSA"


def test_a_seal_gets_its_token_at_once_and_the_transcript_records_it(
    bare: Workspace, tsa: LocalTsa, tmp_path: Path
) -> None:
    ws = naming(bare, tsa)
    path = seal(ws)
    report = stamp_pending(ws)
    assert [(s.subject, s.stamped) for s in report.stamped] == [(SEAL, "transcripts/token-init-2026-12.jsonl")]
    assert (report.pending, report.deferred, report.problems) == ((), None, ())
    sealed = read_entries(path)[-1]
    token = path.with_suffix(".seal.tsr")
    chain = load_chain(tsa.tsa.chain)
    assert check_token_file(token, bytes.fromhex(sealed["hash"]), chain).ok  # over the seal entry's hash
    (logged,) = read_entries(timestamps_log(path))
    (journalled,) = [e for e in ws.journal.entries() if e["event"] == Event.TIMESTAMP_TOKEN]
    fields = ("subject", "stamped", "imprint", "made_at", "gen_time", "after_seconds", "token", "token_sha256", "tsa")
    assert {k: logged[k] for k in fields} == {k: journalled[k] for k in fields}
    assert logged["event"] == Event.TIMESTAMP_TOKEN and logged["made_at"] == sealed["time"]
    assert logged["imprint"] == hashlib.sha256(bytes.fromhex(sealed["hash"])).hexdigest()
    assert logged["token"] == "transcripts/token-init-2026-12.seal.tsr"
    assert logged["token_sha256"] == hashlib.sha256(token.read_bytes()).hexdigest()
    assert logged["tsa"] == chain.fingerprint and logged["tsa_name"] == "Test TSA"
    measured = (datetime.fromisoformat(logged["gen_time"]) - datetime.fromisoformat(sealed["time"])).total_seconds()
    assert logged["after_seconds"] == round(measured, 3)  # as measured: the TSA's clock is not the workspace's
    verdict = seal_timestamp(path)
    assert (
        verdict is not None
        and verdict.ok
        and verdict.message.startswith(f"timestamped by Test TSA at {logged['gen_time']} (")
    )
    # openssl agrees: the token is over the seal entry's 32 bytes
    assert openssl_verify(bytes.fromhex(sealed["hash"]), token, tsa.tsa.chain, tmp_path) == "Verification: OK"
    assert stamp_pending(ws) == StampReport(True)  # nothing left to stamp; nothing asked
    assert tsa.requests == 1
    ws.close()


def test_a_token_over_another_seal_fails_naming_the_token_file(bare: Workspace, tsa: LocalTsa) -> None:
    ws = naming(bare, tsa)
    first, second = seal(ws, "root-ca-2026-12"), seal(ws, "issuing-ca-2026-12")
    assert len(stamp_pending(ws).stamped) == 2
    token = second.with_suffix(".seal.tsr")
    token.chmod(0o644)
    token.write_bytes(first.with_suffix(".seal.tsr").read_bytes())
    assert seal_timestamp(second) == SealTimestamp(False, f"issuing-ca-2026-12.seal.tsr: {OVER_OTHER_DATA}")
    token.write_bytes(b"garbage")
    assert seal_timestamp(second) == SealTimestamp(
        False, "issuing-ca-2026-12.seal.tsr: not an RFC 3161 timestamp response (a DER TimeStampResp)"
    )
    ws.close()


def test_a_seal_made_offline_is_stamped_at_the_next_online_step_which_records_when(
    bare: Workspace, tsa: LocalTsa
) -> None:
    ws = naming(bare, tsa, timeout=0.5)
    before = request_stamp(authority(tsa), b"a token before the seal")  # the TSA's clock, which the seal's must pass
    assert isinstance(before, Stamp)
    tsa.stop()  # a root ceremony's room has no network
    path = seal(ws)
    offline = stamp_pending(ws)
    assert offline == StampReport(
        True, (), ("the seal of transcripts/token-init-2026-12.jsonl",), f"the TSA at {tsa.url} is out of reach "
        "(connection refused)",
    )  # fmt: skip
    assert offline.lines() == [
        f"not yet timestamped: the seal of transcripts/token-init-2026-12.jsonl: the TSA at {tsa.url} is out of reach "
        "(connection refused); the next online step stamps them (`ceremony transcript timestamp`)"
    ]
    assert not path.with_suffix(".seal.tsr").exists() and not timestamps_log(path).exists()
    assert not [e for e in ws.journal.entries() if e["event"] == Event.TIMESTAMP_TOKEN]
    assert seal_timestamp(path) == SealTimestamp(True, NOT_YET)
    tsa.start()  # back online
    (late,) = stamp_pending(ws).stamped
    sealed = read_entries(path)[-1]
    (logged,) = read_entries(timestamps_log(path))
    assert late.gen_time >= before.gen_time  # the TSA's clock: no earlier than a token it gave before the seal
    assert logged["time"] >= sealed["time"] == logged["made_at"]  # the workspace's clock: obtained after the seal
    assert logged["gen_time"] == late.gen_time.isoformat().replace("+00:00", "Z")
    assert (
        logged["after_seconds"]
        == late.after_seconds
        == round((late.gen_time - datetime.fromisoformat(sealed["time"])).total_seconds(), 3)
    )
    assert [e["stamped"] for e in ws.journal.entries() if e["event"] == Event.TIMESTAMP_TOKEN] == [
        "transcripts/token-init-2026-12.jsonl"
    ]
    ws.close()


def test_a_checkpoint_gets_a_token_over_its_signed_bytes_and_signature_and_openssl_agrees(
    bare: Workspace, tsa: LocalTsa, tmp_path: Path
) -> None:
    ws = naming(bare, tsa)
    write_checkpoint(ws.journal, KEY, key_label="ceremony-seal", reason="a test checkpoint")
    (record,) = read_entries(ws.root / CHECKPOINTS_FILE)
    (stamped,) = stamp_pending(ws).stamped
    assert (stamped.subject, stamped.stamped) == (CHECKPOINT, "1")
    token = ws.root / "timestamping" / "checkpoints" / "checkpoint-1.tsr"
    assert stamped.token == token
    assert check_token_file(token, checkpoint_message(record), load_chain(tsa.tsa.chain)).ok
    assert openssl_verify(checkpoint_message(record), token, tsa.tsa.chain, tmp_path) == "Verification: OK"
    changed = checkpoint_message(record).replace(b"a test checkpoint", b"a test checkpoinT")
    assert openssl_verify(changed, token, tsa.tsa.chain, tmp_path) == "Verification: FAILED"
    assert read_entries(ws.root / CHECKPOINTS_FILE) == [record]  # the checkpoint's own log is left as it was
    (journalled,) = [e for e in ws.journal.entries() if e["event"] == Event.TIMESTAMP_TOKEN]
    assert (
        journalled["made_at"] == record["signed_at"]
        and journalled["token"] == "timestamping/checkpoints/checkpoint-1.tsr"
    )
    ws.close()


def test_a_transcript_that_does_not_verify_is_not_stamped_and_said_so(bare: Workspace, tsa: LocalTsa) -> None:
    ws = naming(bare, tsa)
    path = seal(ws)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace("token-init", "root-ca"), *lines[1:]]) + "\n")
    report = stamp_pending(ws)
    assert report.stamped == () and report.problems == (
        f"the seal of transcripts/token-init-2026-12.jsonl is not timestamped: {path}: line 1: hash does not match "
        "its content",
    )
    assert tsa.requests == 0
    ws.close()


def test_a_chain_that_cannot_be_read_defers_stamping_and_is_refused_where_asked_for(
    bare: Workspace, tsa: LocalTsa
) -> None:
    ws = naming(bare, tsa)
    (ws.root / "timestamping" / "tsa-chain.pem").write_bytes(tsa.tsa.root.read_bytes())
    seal(ws)
    with pytest.raises(ConfigError) as refused:
        workspace_authority(ws)
    assert refused.value.message == (
        f"{ws.root / 'workspace.yaml'}: timestamping.certificate: {ws.root / 'timestamping' / 'tsa-chain.pem'}: its "
        "first certificate is no TSA's (RFC 3161 2.3: extendedKeyUsage timeStamping, critical)"
    )
    report = stamp_pending(ws)  # after an operation that happened: never raises
    assert report.pending == ("the seal of transcripts/token-init-2026-12.jsonl",)
    assert report.deferred == refused.value.message
    ws.close()


def test_a_workspace_that_names_no_tsa_reads_and_writes_nothing_for_it(bare: Workspace) -> None:
    path = seal(bare)
    write_checkpoint(bare.journal, KEY, key_label="ceremony-seal", reason="a test checkpoint")
    files = {p: p.read_bytes() for p in bare.root.rglob("*") if p.is_file()}
    assert stamp_pending(bare) == StampReport(configured=False)
    assert stamp_pending(bare).lines() == []
    assert {p: p.read_bytes() for p in bare.root.rglob("*") if p.is_file()} == files
    assert seal_timestamp(path) is None  # nothing to say: no token, none expected
