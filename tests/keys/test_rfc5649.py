"""A CA-key backup is RFC 5649 a standards implementation can read: the blob SoftHSM2 wrote unwraps with
cryptography's ``aes_key_unwrap_with_padding`` under the KEK the custodians' shares rebuild, and holds the CA's
PKCS#8 key plus the zero padding its metadata declares; a standard RFC 5649 blob restores on SoftHSM2.

The KEK is rebuilt here with shamir-mnemonic itself, and the PKCS#8 is read by its DER length, not through the
workbench, so the test says what a restore on another HSM (or offline, in an emergency) would meet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shamir_mnemonic
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding, aes_key_wrap_with_padding

from ceremony import procedures
from ceremony.errors import InputError, TokenError
from ceremony.record.transcript import read_entries, verify_transcript
from tests.support.ceremony_files import approve, live_workspace, run, run_examples, variant

BACKUP = Path("artifacts/backups/ca-s1sp-root.wrapped")


@pytest.fixture
def backed_up(tmp_path: Path) -> Path:
    """A SoftHSM2 workspace through the example ceremonies up to the root key's backup (shares deposited)."""
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "key-backup")
    return ws


def _kek(ws: Path) -> bytes:
    """The backup KEK, rebuilt from the m shares the unattended backup deposited (shamir-mnemonic alone)."""
    words = [p.read_text(encoding="utf-8").strip() for p in sorted((ws / "secrets/shares/ca-s1sp-root.kek").iterdir())]
    return bytes(shamir_mnemonic.combine_mnemonics(words))


def _kcv(key: bytes) -> str:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - a check value
    return (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex().upper()


def _der_length(data: bytes) -> int:
    """The whole length of the DER SEQUENCE ``data`` starts with (definite, minimal length octets only)."""
    assert data[0] == 0x30, "not a SEQUENCE"
    first = data[1]
    if first < 0x80:
        return 2 + first
    octets = first & 0x7F
    assert 1 <= octets <= 2, "indefinite or oversized length"
    length = int.from_bytes(data[2 : 2 + octets], "big")
    assert length >= 0x80 and (octets == 1 or length >= 0x100), "non-minimal length"
    return 2 + octets + length


def _root_certificate(ws: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ws / "artifacts/cas/s1sp-root.pem").read_bytes())


@pytest.mark.hsm
def test_the_backup_unwraps_with_cryptography_and_holds_the_ca_key_and_the_declared_padding(backed_up: Path) -> None:
    meta = json.loads((backed_up / f"{BACKUP}.json").read_text(encoding="utf-8"))
    # SoftHSM2 2.6 offers no KWP (0x210B): "auto" chose its own RFC 5649 number, and says so.
    assert meta["wrap_mechanism"] == "0x210A"
    assert meta["wrap_mechanism_name"].startswith("CKM_AES_KEY_WRAP_PAD")
    assert meta["padded_to_multiple_of"] == 8 and "zero-pads the PKCS#8" in meta["padding"]
    (wrap,) = [
        e for e in read_entries(backed_up / "transcripts/key-backup-2026-12.jsonl") if e.get("step") == "key.wrap"
    ]
    for field in ("wrap_mechanism", "wrap_mechanism_name", "padding", "padded_to_multiple_of"):
        assert wrap["details"][field] == meta[field], field

    kek = _kek(backed_up)
    assert _kcv(kek) == meta["kcv"]
    plain = aes_key_unwrap_with_padding(kek, (backed_up / BACKUP).read_bytes())
    total = _der_length(plain)
    trimmed, padding = plain[:total], plain[total:]
    # SoftHSM's padding: the PKCS#8 zero-padded to a multiple of 8, which RFC 5649's length indicator counts.
    assert len(plain) % meta["padded_to_multiple_of"] == 0
    assert len(padding) == -total % meta["padded_to_multiple_of"] < 8
    assert padding == bytes(len(padding))
    if padding:  # a strict DER reader refuses the untrimmed octets
        with pytest.raises(ValueError):
            serialization.load_der_private_key(plain, None)
    key = serialization.load_der_private_key(trimmed, None)
    public = key.public_key()
    assert public == _root_certificate(backed_up).public_key()
    assert (
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex()
        == (meta["public_key"])
    )


def _standard_backup(ws: Path, name: str, pkcs8: bytes) -> Path:
    """A backup beside the real one: ``pkcs8`` wrapped by cryptography's RFC 5649 (no padding beyond the RFC's,
    the length indicator exact), with the real backup's metadata but this blob's digest."""
    import hashlib

    blob = aes_key_wrap_with_padding(_kek(ws), pkcs8)
    meta = json.loads((ws / f"{BACKUP}.json").read_text(encoding="utf-8"))
    meta["wrapped_sha256"] = hashlib.sha256(blob).hexdigest()
    path = ws / "artifacts/backups" / f"{name}.wrapped"
    path.write_bytes(blob)
    path.with_name(f"{path.name}.json").write_text(json.dumps(meta), encoding="utf-8")
    return path.relative_to(ws)


@pytest.mark.hsm
@pytest.mark.slow
def test_softhsm_restores_a_standard_rfc5649_blob_through_the_restore_ceremony(backed_up: Path, tmp_path: Path) -> None:
    plain = aes_key_unwrap_with_padding(_kek(backed_up), (backed_up / BACKUP).read_bytes())
    softhsm_encoding = plain[: _der_length(plain)]  # the PKCS#8 SoftHSM wrote, without its zero padding
    key = serialization.load_der_private_key(softhsm_encoding, None)
    cryptography_encoding = key.private_bytes(  # with the public key: another length, another padding
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert len(softhsm_encoding) % 8 and len(cryptography_encoding) % 8  # RFC 5649 padding is exercised
    for name, pkcs8 in (("softhsm-encoding", softhsm_encoding), ("cryptography-encoding", cryptography_encoding)):
        backup = _standard_backup(backed_up, name, pkcs8)
        path = variant(
            tmp_path / "files",
            "key-restore.yaml",
            {"ceremony_id": f"restore-{name}", "token.label": name, "bags.tokens": {}, "backup": str(backup)},
            as_name=f"{name}.yaml",
        )
        outcome = run(backed_up, path)
        assert verify_transcript(outcome.transcript).ok
        steps = {e["step"]: e for e in read_entries(outcome.transcript) if e.get("event") == "step"}
        assert steps["key.unwrap"]["details"]["wrap_mechanism"] == "0x210A"
        assert steps["key.prove"]["result"] == "ok"


@pytest.mark.hsm
def test_a_mechanism_the_token_lacks_is_refused_before_the_backup_key_is_split(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "issuing-ca")
    path = variant(tmp_path / "files", "key-backup.yaml", {"token.wrap_mechanism": "0x210B"})
    approve(ws, path)
    with pytest.raises(TokenError) as err:
        procedures.run(path, ws)
    assert (
        err.value.message
        == "token 's1sp-ca-token' does not offer wrap mechanism CKM_AES_KEY_WRAP_KWP (PKCS#11 3.0, RFC 5649)"
    )
    assert not (ws / "secrets/shares/ca-s1sp-root.kek").exists()
    assert not list((ws / "share-cards").glob("key-backup-2026-12.*"))


@pytest.mark.hsm
def test_a_restore_file_naming_another_mechanism_than_the_backup_s_is_refused(backed_up: Path, tmp_path: Path) -> None:
    path = variant(tmp_path / "files", "key-restore.yaml", {"token.wrap_mechanism": "0x2109"})
    approve(backed_up, path)
    with pytest.raises(InputError, match=r"token.wrap_mechanism: 0x2109 is not the mechanism the backup was wrapped "
                       r"with \(0x210A\); use auto or 0x210A"):  # fmt: skip
        procedures.run(path, backed_up)
