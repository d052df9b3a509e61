"""Evidence pack verification on a small hand-made pack: intact, changed, added, missing, and badly signed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ceremony.compliance.pack import MANIFEST, SIGNATURE, SIGNER, fingerprint_words, verify_pack
from ceremony.errors import InputError
from ceremony.keys.signatures import sign
from ceremony.procedures.attestation import key_fingerprint
from ceremony.record.manifest import file_list
from ceremony.record.transcript import read_aloud

Key = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _pem(key: Key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _seal(out: Path, key: Key) -> bytes:
    """What reporting/evidence.py does last: signer.pem, a manifest over every file, its signature."""
    (out / SIGNER).write_bytes(_pem(key))
    manifest = {"format": "s1spki-evidence-pack/1", "files": file_list(out, skip=(MANIFEST, SIGNATURE))}
    data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    return data


def _pack(out: Path, key: Key) -> bytes:
    (out / "findings").mkdir(parents=True)
    (out / "findings" / "findings.json").write_text('[{"id": "CER-02-a0f08c17"}]', encoding="utf-8")
    (out / "README.md").write_text("how to verify this pack\n", encoding="utf-8")
    return _seal(out, key)


@pytest.fixture(params=["ec-p256", "ed25519"])
def key(request: pytest.FixtureRequest) -> Key:
    return (
        ec.generate_private_key(ec.SECP256R1()) if request.param == "ec-p256" else ed25519.Ed25519PrivateKey.generate()
    )


@pytest.fixture
def pack(tmp_path: Path, key: Key) -> Path:
    _pack(tmp_path / "pack", key)
    return tmp_path / "pack"


def _trust(tmp_path: Path, key: Key) -> Path:
    path = tmp_path / "officer.pem"
    path.write_bytes(_pem(key))
    return path


def test_an_intact_pack_verifies_but_its_carried_key_is_not_established(pack: Path, key: Key) -> None:
    check = verify_pack(pack)
    data = (pack / MANIFEST).read_bytes()
    assert (check.ok, check.signer_established) == (True, False)
    assert check.signer_key == key_fingerprint(key.public_key())
    assert check.message == (
        f"intact: 3 files; signed by {check.signer_key}, which is NOT established: compare it with the officer's "
        "published fingerprint, or pass --trust"
    )
    assert check.words == fingerprint_words(data) == read_aloud(hashlib.sha256(data).digest())
    assert len(check.words.split()) == 8


def test_an_intact_pack_signed_by_the_trusted_key_is_established(tmp_path: Path, pack: Path, key: Key) -> None:
    check = verify_pack(pack, trust=_trust(tmp_path, key))
    assert (check.ok, check.signer_established) == (True, True)
    assert check.message == f"intact: 3 files; signed by the trusted key {key_fingerprint(key.public_key())}"


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda p: _flip_one_byte(p / "README.md"),
            "README.md: does not match the manifest (changed since it was signed)",
        ),
        (
            lambda p: (p / "README.md").write_text("how to verify this pack\n\n"),
            "README.md: does not match the manifest (changed since it was signed)",
        ),
        (
            lambda p: (p / "findings" / "extra.json").write_text("{}"),
            "findings/extra.json: not in the manifest (added after signing)",
        ),
        (
            lambda p: (p / "findings" / "findings.json").unlink(),
            "findings/findings.json: listed in the manifest but missing",
        ),
        (
            lambda p: (p / SIGNATURE).unlink(),
            "manifest.json.sig: the manifest's signature does not verify under signer.pem",
        ),
        (
            lambda p: _flip_one_byte(p / SIGNATURE),
            "manifest.json.sig: the manifest's signature does not verify under signer.pem",
        ),
        (lambda p: _flip_one_byte(p / SIGNER), "signer.pem: does not match the manifest (changed since it was signed)"),
    ],
    ids=[
        "changed-byte",
        "changed-size",
        "added-file",
        "missing-file",
        "no-signature",
        "bad-signature",
        "changed-signer",
    ],
)
def test_a_damaged_pack_is_refused_saying_what_is_wrong(pack: Path, damage: Any, message: str) -> None:
    damage(pack)
    check = verify_pack(pack)
    assert (check.ok, check.signer_established, check.message) == (False, False, message)


def test_a_manifest_changed_after_signing_does_not_verify(pack: Path) -> None:
    manifest = json.loads((pack / MANIFEST).read_bytes())
    manifest["format"] = "s1spki-evidence-pack/2"
    (pack / MANIFEST).write_bytes(json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n")
    check = verify_pack(pack)
    assert not check.ok
    assert check.message == "manifest.json.sig: the manifest's signature does not verify under signer.pem"


def test_a_pack_resealed_by_someone_else_is_caught_only_by_the_trusted_key(
    tmp_path: Path, pack: Path, key: Key
) -> None:
    (pack / "findings" / "findings.json").write_text("[]", encoding="utf-8")
    impostor = ec.generate_private_key(ec.SECP256R1())
    for name in (MANIFEST, SIGNATURE, SIGNER):
        (pack / name).unlink()
    _seal(pack, impostor)
    carried = verify_pack(pack)
    assert (carried.ok, carried.signer_established) == (True, False)
    assert carried.signer_key == key_fingerprint(impostor.public_key()) != key_fingerprint(key.public_key())
    trusted = verify_pack(pack, trust=_trust(tmp_path, key))
    assert (trusted.ok, trusted.signer_established) == (False, False)
    assert trusted.message == "manifest.json.sig: the manifest's signature does not verify under the trusted key"


def test_a_hostile_manifest_is_refused_before_any_file_is_read(pack: Path) -> None:
    (pack / MANIFEST).write_text(json.dumps({"files": [{"path": "../../etc/passwd", "sha256": "00", "size": 1}]}))
    check = verify_pack(pack)
    assert (check.ok, check.message) == (
        False,
        "manifest.json: lists '../../etc/passwd', which is outside its directory",
    )
    (pack / MANIFEST).write_bytes(b"\x00not json")
    assert verify_pack(pack).message == "manifest.json: not a manifest this tool reads"


def test_a_signer_file_that_is_no_key_is_said_so(tmp_path: Path, key: Key) -> None:
    out = tmp_path / "pack"
    out.mkdir()
    (out / "README.md").write_text("x", encoding="utf-8")
    (out / SIGNER).write_bytes(b"not a key\n")  # listed with its true hash: the manifest is intact
    data = json.dumps({"files": file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    assert verify_pack(out).message == "signer.pem: not a PEM public key"


def test_a_pack_without_signer_pem_needs_the_trusted_key(tmp_path: Path, key: Key) -> None:
    out = tmp_path / "pack"
    out.mkdir()
    (out / "README.md").write_text("x", encoding="utf-8")
    data = json.dumps({"files": file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    assert verify_pack(out).message == "manifest.json.sig: the manifest's signature does not verify under signer.pem"
    assert verify_pack(out, trust=_trust(tmp_path, key)).ok


def test_a_directory_without_a_manifest_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        verify_pack(tmp_path)
    assert err.value.message == f"{tmp_path}: not an evidence pack (no manifest.json)"


@pytest.mark.parametrize("content", [b"not a key", None], ids=["not-pem", "missing"])
def test_a_trust_file_that_is_no_public_key_is_an_input_error(
    tmp_path: Path, pack: Path, content: bytes | None
) -> None:
    trust = tmp_path / "trust.pem"
    if content is not None:
        trust.write_bytes(content)
    with pytest.raises(
        InputError, match=r"^--trust: .*trust\.pem is not a PEM public key \((ValueError|FileNotFoundError)\)$"
    ):
        verify_pack(pack, trust=trust)


def test_a_manifest_naming_an_impossible_path_is_refused_not_a_traceback(pack: Path) -> None:
    (pack / MANIFEST).write_text(json.dumps({"files": [{"path": "a" * 300, "sha256": "00" * 32, "size": 1}]}))
    check = verify_pack(pack)
    assert not check.ok and check.message.startswith("manifest.json: ")


def test_a_listed_file_reached_through_a_symlink_out_of_the_pack_is_refused(tmp_path: Path, key: Key) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "findings.json").write_text("[]", encoding="utf-8")
    out = tmp_path / "pack"
    out.mkdir()
    (out / "elsewhere").symlink_to(outside, target_is_directory=True)
    (out / SIGNER).write_bytes(_pem(key))
    files = [{"path": "elsewhere/findings.json", "sha256": hashlib.sha256(b"[]").hexdigest(), "size": 2}]
    data = json.dumps({"files": files + file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    check = verify_pack(out)
    assert not check.ok and check.message.startswith("elsewhere: a symbolic link in the pack"), check.message
