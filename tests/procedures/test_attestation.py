"""Participants attest sealed transcripts with their registered keys; the record says who has and has not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ceremony.cli.main import main
from ceremony.errors import InputError, StateError
from ceremony.keys.personal import PIN_ENV
from ceremony.model.people import load_register
from ceremony.procedures.attestation import (
    attestation_status,
    attestations_path,
    key_fingerprint,
    key_kind,
    sign_transcript,
)
from tests.support.ceremony_files import DATA, live_workspace, run_examples


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path]:
    """A sealed token-init transcript, and a register giving alice, carol and wendy attestation keys."""
    ws = live_workspace(tmp_path / "ws", "software")
    transcript = run_examples(ws, "token-init")["token-init"].transcript
    register = yaml.safe_load((DATA / "people.yaml").read_text())
    keys = tmp_path / "keys"
    keys.mkdir()
    for pid in ("alice", "carol", "wendy"):
        key = ed25519.Ed25519PrivateKey.generate() if pid == "wendy" else ec.generate_private_key(ec.SECP256R1())
        register["people"][pid]["attestation_key"] = key_fingerprint(key.public_key())
        (keys / f"{pid}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(register))
    return transcript, tmp_path


def _sign(transcript: Path, base: Path, person: str, key: str | None = None) -> int:
    return main(
        ["transcript", "sign", str(transcript), "--as", person, "--key", str(base / "keys" / f"{key or person}.key"),
         "--register", str(base / "people.yaml")]
    )  # fmt: skip


def test_attestations_say_who_has_and_has_not_signed(
    sealed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    transcript, base = sealed
    assert _sign(transcript, base, "wendy") == 0
    assert capsys.readouterr().out.endswith("with file key (for trying the tool only)\n")
    assert _sign(transcript, base, "alice") == 0
    capsys.readouterr()
    assert main(["transcript", "verify", str(transcript), "--register", str(base / "people.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.search(r": intact and sealed, \d+ entries; read aloud: (\w+ ){7}\w+$", out[0])
    assert out[1] == (
        "attested by: wendy, alice; not yet: bob, carol, dave, erin; "
        "with a file key (for trying the tool only): wendy, alice"
    )
    # The log records the kind of key: a file key, for trying the tool only.
    entries = [json.loads(line) for line in attestations_path(transcript).read_text().splitlines()]
    assert [(e["person"], e["key_kind"], e["key_origin"]) for e in entries] == [
        ("wendy", "file", "file"),
        ("alice", "file", "file"),
    ]
    status = attestation_status(transcript, load_register(base / "people.yaml"))
    assert status.file_keys == ["wendy", "alice"] and status.token_keys == []


def test_a_key_the_register_does_not_name_is_refused(
    sealed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    transcript, base = sealed
    assert _sign(transcript, base, "alice", key="carol") == 2
    assert "is not the one the register names for alice" in capsys.readouterr().err
    assert _sign(transcript, base, "bob", key="carol") == 2
    assert "the register names no attestation key for bob" in capsys.readouterr().err
    assert not attestations_path(transcript).exists()


def test_only_a_sealed_transcript_is_attested_and_only_once(sealed: tuple[Path, Path]) -> None:
    transcript, base = sealed
    register = load_register(base / "people.yaml")
    key = serialization.load_pem_private_key((base / "keys" / "carol.key").read_bytes(), None)
    sign_transcript(transcript, "carol", key, register)  # type: ignore[arg-type]
    with pytest.raises(StateError, match="carol has already attested"):
        sign_transcript(transcript, "carol", key, register)  # type: ignore[arg-type]
    lines = transcript.read_text().splitlines()
    transcript.write_text("\n".join(lines[:-1]) + "\n")
    alice = serialization.load_pem_private_key((base / "keys" / "alice.key").read_bytes(), None)
    with pytest.raises(StateError, match="only an intact, sealed transcript can be attested: .*truncated"):
        sign_transcript(transcript, "alice", alice, register)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'mallory' is not in the participant register"):
        sign_transcript(transcript.with_name("x.jsonl"), "mallory", key, register)  # type: ignore[arg-type]


def test_a_forged_or_moved_attestation_fails_verification(
    sealed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    transcript, base = sealed
    assert _sign(transcript, base, "carol") == 0
    log = attestations_path(transcript)
    entry = json.loads(log.read_text())
    entry["person"] = "alice"  # claims to be alice: the chain and the key both object
    log.write_text(json.dumps(entry) + "\n")
    status = attestation_status(transcript, load_register(base / "people.yaml"))
    assert not status.ok and "alice" in status.invalid
    capsys.readouterr()
    assert main(["transcript", "verify", str(transcript), "--register", str(base / "people.yaml")]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_an_attestation_from_before_key_kinds_counts_as_a_file_key(sealed: tuple[Path, Path]) -> None:
    transcript, base = sealed
    assert _sign(transcript, base, "carol") == 0
    log = attestations_path(transcript)
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert key_kind({k: v for k, v in entry.items() if k not in ("key_kind", "key_origin")}) == "file"


def test_token_options_are_checked_before_any_pin_is_asked_for(
    sealed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    transcript, base = sealed
    monkeypatch.delenv(PIN_ENV, raising=False)
    register = ["--register", str(base / "people.yaml")]
    sign = ["transcript", "sign", str(transcript)]
    assert main([*sign, "--as", "alice", "--token", "", *register]) == 2
    assert "--token: give the label of your token" in capsys.readouterr().err
    assert main([*sign, "--as", "bob", "--token", "bob-card", *register]) == 2
    assert "the register names no attestation key for bob" in capsys.readouterr().err
    assert main([*sign, "--as", "alice", "--token", "alice-card", *register]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"set {PIN_ENV} for a trial" in err
    assert main([*sign, "--as", "alice", "--token", "a", "--key", "k", *register]) == 2
    assert main([*sign, "--as", "alice", "--softhsm-conf", "x", *register]) == 2
    assert "go with --token" in capsys.readouterr().err
    assert not attestations_path(transcript).exists()
