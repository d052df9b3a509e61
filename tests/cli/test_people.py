"""`ceremony people enrol`: bad input is one line on stderr, exit 2, and nothing written; a good enrolment
changes only that person's entry of the register."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ceremony.cli.main import main
from ceremony.keys.personal import PIN_ENV
from ceremony.model.people import load_register, with_key_fields
from ceremony.procedures.attestation import key_fingerprint
from tests.keys.test_personal import PERSON_PIN, person_token
from tests.support.ceremony_files import DATA

FINGERPRINT = "sha256:" + "ab" * 32


@pytest.fixture
def register(tmp_path: Path) -> Path:
    path = tmp_path / "reg" / "people.yaml"
    path.parent.mkdir()
    path.write_text((DATA / "people.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mallory", "--token", "m-card"], "'mallory' is not in the participant register"),
        (["carol", "--token", ""], "--token: give the label of your token (got '')"),
        (["carol", "--token", "carol-card"], f"no PIN for carol's token 'carol-card': type it at a terminal, or set {PIN_ENV}"),  # noqa: E501
        (["carol", "--token", "c", "--module", "/nonexistent.so"], "--module: /nonexistent.so is not a PKCS#11 module"),
        (["Carol!", "--token", "c"], "PERSON must be a person id"),
    ],
    ids=["unknown-person", "empty-token-label", "missing-pin", "missing-module", "bad-person-id"],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    argv: list[str], message: str, register: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    before = _snapshot(register.parent)
    assert main(["people", "enrol", *argv, "--register", str(register)]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1 and message in err, err
    assert _snapshot(register.parent) == before


def test_the_shipped_example_register_is_never_enrolled_into(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CEREMONY_REGISTER", raising=False)
    monkeypatch.setenv("CEREMONY_WORKSPACE", str(tmp_path / "none"))
    assert main(["people", "enrol", "carol", "--token", "carol-card"]) == 2
    assert "the example in data/ is not changed" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["people", "enrol", "carol"])
    assert exit_.value.code == 2 and "--token" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["people", "enrol", "carol", "--token", "c", "--algorithm", "dsa"])
    assert exit_.value.code == 2


def test_the_register_rewrite_touches_only_that_persons_key_fields() -> None:
    text = (DATA / "people.yaml").read_text(encoding="utf-8")
    values = {"attestation_key": FINGERPRINT, "attestation_token": "carol-card"}
    once = with_key_fields(text, "carol", values)
    assert once is not None
    again = with_key_fields(once, "carol", values | {"attestation_certificate": "people/carol.pem"})
    assert again is not None
    removed = [line for line in text.splitlines() if line not in again.splitlines()]
    added = [line for line in again.splitlines() if line not in text.splitlines()]
    assert removed == [] and added == [
        f'    attestation_key: "{FINGERPRINT}"',
        '    attestation_certificate: "people/carol.pem"',
        '    attestation_token: "carol-card"',
    ]
    assert again.index("attestation_token") < again.index("  dave:")
    # A register not laid out as blocks is left to the caller (who rewrites it whole).
    assert with_key_fields("schema_version: 1\npeople: {carol: {name: C}}\n", "carol", values) is None
    assert with_key_fields(text, "mallory", values) is None


@pytest.mark.hsm
def test_an_rsa_enrolment_writes_the_certificate_and_only_that_entry(
    register: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = person_token(tmp_path, "wendy")
    monkeypatch.setenv(PIN_ENV, PERSON_PIN)
    before = load_register(register)
    argv = ["people", "enrol", "wendy", "--token", "wendy-card", "--softhsm-conf", str(conf), "--algorithm", "rsa-3072"]
    assert main([*argv, "--register", str(register), "--json"]) == 0
    out, err = capsys.readouterr()
    done = json.loads(out)
    assert done["key_generated"] and done["comments_kept"] and PERSON_PIN not in out + err
    cert = x509.load_pem_x509_certificate(Path(done["certificate"]).read_bytes())
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
    after = load_register(register)
    assert after.people["wendy"].attestation_key == key_fingerprint(cert.public_key()) == done["attestation_key"]
    assert {k: v for k, v in after.people.items() if k != "wendy"} == {
        k: v for k, v in before.people.items() if k != "wendy"
    }
    # Enrolling again takes the key already on the token, and its certificate already written.
    assert main([*argv, "--register", str(register)]) == 0
    assert "attestation key already on token 'wendy-card'" in capsys.readouterr().out
    assert load_register(register).people["wendy"] == after.people["wendy"]
    assert sorted(p.name for p in (register.parent / "people").iterdir()) == ["wendy.pem"]
