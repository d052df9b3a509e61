"""A person's own key: a token key on their own SoftHSM2 token (its own configuration, used from processes of
its own), or a file key for trying the tool; attestations by either verify by the register's fingerprint."""

from __future__ import annotations

import json
import pickle
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ceremony.cli.main import main
from ceremony.errors import InputError, TokenError
from ceremony.keys.personal import (
    FILE_KEY_NOTE,
    PIN_ENV,
    CertificateRequest,
    FileKey,
    TokenKey,
    TokenRef,
    enrol_token_key,
    in_own_process,
    load_file_key,
    person_pin,
    token_ref,
)
from ceremony.keys.pkcs11 import Pkcs11KeyStore, find_softhsm_module
from ceremony.keys.signatures import verifies
from ceremony.model.people import load_register
from ceremony.procedures.attestation import attestation_status, attestations_path, key_fingerprint
from ceremony.record.transcript import GENESIS, canonical, entry_hash, read_entries
from tests.support.ceremony_files import DATA, live_workspace, run_examples
from tests.support.person_tokens import PERSON_PIN, person_token


@dataclass
class Scene:
    transcript: Path
    register: Path
    conf: Path
    outputs: list[str]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str], outputs: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    outputs.extend([out, err])
    return code, out, err


@pytest.fixture
def scene(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Scene:
    """A sealed token-init transcript of a SoftHSM2 workspace (this process uses its token configuration);
    carol's own token under another configuration, enrolled through the CLI into a copy of the register."""
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    transcript = run_examples(ws, "token-init")["token-init"].transcript
    register = tmp_path / "registers" / "people.yaml"
    register.parent.mkdir()
    register.write_text((DATA / "people.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    conf = person_token(tmp_path, "carol")
    capsys.readouterr()
    monkeypatch.setenv(PIN_ENV, PERSON_PIN)
    outputs: list[str] = []
    enrol = ["people", "enrol", "carol", "--token", "carol-card", "--softhsm-conf", str(conf)]
    code, out, err = _cli([*enrol, "--register", str(register)], capsys, outputs)
    assert code == 0, err
    assert out.startswith("carol: attestation key generated on token 'carol-card' (sha256:")
    return Scene(transcript, register, conf, outputs)


def _sign_as_carol(scene: Scene, capsys: pytest.CaptureFixture[str], token: str | None = None) -> tuple[int, str]:
    """``transcript sign --as carol``: with ``--token``, or by default the token her register entry names."""
    argv = ["transcript", "sign", str(scene.transcript), "--as", "carol", *(["--token", token] if token else [])]
    code, out, err = _cli([*argv, "--softhsm-conf", str(scene.conf), "--register", str(scene.register)], capsys,
                          scene.outputs)  # fmt: skip
    return code, out + err


@pytest.mark.hsm
def test_an_attestation_with_the_key_on_ones_own_token_verifies(
    scene: Scene, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The register names the key by its fingerprint, with its certificate and token; its comments stay.
    text = scene.register.read_text(encoding="utf-8")
    assert text.startswith("# Participant register (example).")
    carol = load_register(scene.register).people["carol"]
    assert carol.attestation_certificate == "people/carol.pem" and carol.attestation_token == "carol-card"
    original = yaml.safe_load((DATA / "people.yaml").read_text())
    assert {k: v for k, v in yaml.safe_load(text)["people"].items() if k != "carol"} == {
        k: v for k, v in original["people"].items() if k != "carol"
    }

    # The self-signed certificate: CN = person, O = organisation, for signatures, its key the register's.
    pem = (scene.register.parent / "people" / "carol.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "carol"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "DCC"
    assert cert.issuer == cert.subject and isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert key_fingerprint(cert.public_key()) == carol.attestation_key
    assert verifies(cert.public_key(), cert.signature, cert.tbs_certificate_bytes)
    shown = subprocess.run(  # noqa: S603 - a fixed command on a test file
        ["openssl", "x509", "-noout", "-text", "-in", str(scene.register.parent / "people" / "carol.pem")],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Digital Signature, Non Repudiation" in shown and "CN=carol" in shown.replace(" = ", "=")
    assert "ecdsa-with-SHA256" in shown and "CA:FALSE" in shown

    # Signing through the CLI (the token her register entry names): the log says the key was on carol's
    # token; verify shows it valid.
    code, said = _sign_as_carol(scene, capsys)
    assert code == 0, said
    assert said.endswith("with key 'attestation' on token 'carol-card'\n") and FILE_KEY_NOTE not in said
    (entry,) = read_entries(attestations_path(scene.transcript))
    assert (entry["person"], entry["key_kind"], entry["key_origin"]) == ("carol", "token", "carol-card")
    status = attestation_status(scene.transcript, load_register(scene.register))
    assert status.attested == ["carol"] and status.token_keys == ["carol"] and not status.file_keys and status.ok
    code, out, _ = _cli(["transcript", "verify", str(scene.transcript), "--register", str(scene.register)], capsys,
                        scene.outputs)  # fmt: skip
    assert code == 0 and "attested by: carol; not yet:" in out and "file key" not in out

    # The private key reads back SENSITIVE and never EXTRACTABLE.
    key = TokenKey.open(token_ref("carol-card", softhsm_conf=scene.conf), PERSON_PIN)
    attributes = key.attributes()
    assert attributes.sensitive and attributes.always_sensitive and attributes.local
    assert not attributes.extractable and attributes.never_extractable
    assert "PIN" not in repr(key) and PERSON_PIN not in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)

    # The PIN appears in no output, file or record.
    written = [
        p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and not {"token", "tokens"} & set(p.relative_to(tmp_path).parts)
    ]
    assert len(written) > 10
    assert not any(PERSON_PIN in text for text in scene.outputs)
    assert not any(PERSON_PIN.encode() in data for data in written)


def _rechain(path: Path, entries: list[dict[str, object]]) -> None:
    prev = GENESIS
    for seq, entry in enumerate(entries, start=1):
        entry.update(seq=seq, prev=prev)
        entry["hash"] = entry_hash(entry)
        prev = str(entry["hash"])
    path.chmod(0o644)
    path.write_bytes(b"".join(canonical(e) + b"\n" for e in entries))


@pytest.mark.hsm
def test_a_tampered_signature_or_a_key_the_register_no_longer_names_is_invalid(
    scene: Scene, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # dave's own token: not the key the register names for carol, so signing as carol with it is refused.
    dave = person_token(tmp_path, "dave")
    other = tmp_path / "other" / "people.yaml"
    other.parent.mkdir()
    other.write_text((DATA / "people.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    enrol = ["people", "enrol", "dave", "--token", "dave-card", "--softhsm-conf", str(dave), "--register", str(other)]
    assert _cli(enrol, capsys, scene.outputs)[0] == 0
    argv = ["transcript", "sign", str(scene.transcript), "--as", "carol", "--token", "dave-card"]
    code, _, err = _cli([*argv, "--softhsm-conf", str(dave), "--register", str(scene.register)], capsys,
                        scene.outputs)  # fmt: skip
    assert code == 2 and "--token: this key (sha256:" in err and "is not the one the register names for carol" in err
    assert err.count("\n") == 1 and not attestations_path(scene.transcript).exists()
    # A wrong PIN: one line, no PIN in it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PIN_ENV, "wrong-pin-0000")
        code, _ = _sign_as_carol(scene, capsys)
        assert code == 2 and "PIN incorrect" in scene.outputs[-1] and "wrong-pin" not in scene.outputs[-1]

    assert _sign_as_carol(scene, capsys, token="carol-card")[0] == 0
    log = attestations_path(scene.transcript)
    signed = log.read_bytes()
    (entry,) = read_entries(log)
    signature = bytearray(bytes.fromhex(str(entry["signature"])))
    signature[-1] ^= 0x01
    _rechain(log, [entry | {"signature": signature.hex()}])
    status = attestation_status(scene.transcript, load_register(scene.register))
    assert status.invalid == ["carol"] and not status.attested
    code, out, _ = _cli(["transcript", "verify", str(scene.transcript), "--register", str(scene.register)], capsys,
                        scene.outputs)  # fmt: skip
    assert code == 1 and "INVALID: carol" in out

    # carol re-enrols on a new token: her old token's attestation is no longer by the key the register names.
    log.write_bytes(signed)
    new = person_token(tmp_path, "carol", "carol-card-2")
    enrol = ["people", "enrol", "carol", "--token", "carol-card-2", "--softhsm-conf", str(new)]
    code, out, err = _cli([*enrol, "--register", str(scene.register), "--json"], capsys, scene.outputs)
    assert code == 0, err
    done = json.loads(out)
    assert done["certificate"].endswith(f"people/carol-{done['attestation_key'][7:23]}.pem")
    status = attestation_status(scene.transcript, load_register(scene.register))
    assert status.invalid == ["carol"]
    assert not any(PERSON_PIN in text for text in scene.outputs)


@pytest.mark.hsm
def test_a_token_key_signs_from_a_process_of_its_own_and_refuses_what_it_cannot(tmp_path: Path) -> None:
    conf = person_token(tmp_path, "erin")
    ref = token_ref("erin-card", softhsm_conf=conf)
    with pytest.raises(TokenError, match="no private key labelled 'attestation' on token 'erin-card'"):
        TokenKey.open(ref, PERSON_PIN)
    with pytest.raises(TokenError, match="PIN incorrect"):
        TokenKey.open(ref, "not-the-pin")
    with pytest.raises(TokenError, match="no token labelled 'nobody-card'"):
        TokenKey.open(token_ref("nobody-card", softhsm_conf=conf), PERSON_PIN)
    # A key already under the label that could leave the token is not enrolled.
    in_own_process(_extractable_key_on, ref)
    request = CertificateRequest(
        person="erin", organisation="DCO", not_before=datetime(2026, 12, 1, tzinfo=timezone.utc)
    )
    with pytest.raises(TokenError, match="'attestation' on token 'erin-card' is extractable or not sensitive"):
        enrol_token_key(ref, PERSON_PIN, "ec-p256", request)


def _extractable_key_on(ref: TokenRef) -> None:
    store = Pkcs11KeyStore(ref.module, ref.token_label, PERSON_PIN, ref.conf)
    store.generate(ref.key_label, "ec-p256", extractable=True)
    store.close()


def test_a_file_key_says_it_is_for_trying_the_tool_only(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "alice.key"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key = load_file_key(path)
    assert (key.kind, key.origin, key.description) == ("file", "file", "file key (for trying the tool only)")
    assert verifies(key.public_key(), key.sign(b"seal"), b"seal")
    assert isinstance(key, FileKey) and "BEGIN" not in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    (tmp_path / "link.key").symlink_to(path)
    with pytest.raises(InputError, match="regular file|cannot read"):
        load_file_key(tmp_path / "link.key")
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(InputError, match="is not a PEM private key"):
        load_file_key(tmp_path / "junk.key")


def test_token_references_and_pins_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("", " card", "x" * 33):
        with pytest.raises(InputError, match="--token"):
            token_ref(bad, module=__file__)
    with pytest.raises(InputError, match="--module: .* is not a PKCS#11 module file"):
        token_ref("card", module=str(tmp_path / "none.so"))
    with pytest.raises(InputError, match="--softhsm-conf: .* is not a file"):
        token_ref("card", module=__file__, softhsm_conf=tmp_path / "none.conf")
    assert token_ref("card", module=__file__).key_label == "attestation"
    monkeypatch.delenv(PIN_ENV, raising=False)
    with pytest.raises(InputError, match=f"no PIN for carol's token 'card': .*{PIN_ENV}"):
        person_pin("carol", "card")
    monkeypatch.setenv(PIN_ENV, "")
    with pytest.raises(InputError, match="is empty"):
        person_pin("carol", "card")
    monkeypatch.setenv(PIN_ENV, "1234")
    assert person_pin("carol", "card") == "1234"


def _fails() -> None:
    raise ValueError("a message that might hold anything")


def test_a_process_of_its_own_hands_back_results_and_names_other_failures_by_class() -> None:
    assert in_own_process(sum, [1, 2, 3]) == 6
    with pytest.raises(TokenError, match=r"^the token process failed \(ValueError\)$"):
        in_own_process(_fails)


def test_softhsm_is_found_or_the_module_must_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREMONY_SOFTHSM_MODULE", "")
    assert find_softhsm_module() is None
    with pytest.raises(InputError, match="--module: name your token's PKCS#11 module"):
        token_ref("card")
