"""Software key store: encrypted PKCS#8 written once with mode 0600, honest attributes, refusals."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ceremony.errors import ConfigError, InputError, TokenError
from ceremony.keys.registry import open_key_store
from ceremony.keys.software import SoftwareKeyStore
from ceremony.keys.store import KeyAttributes
from ceremony.model.algorithms import KeyAlgorithm

PASSPHRASE = b"test-passphrase-not-secret"
WRONG = b"another-passphrase-000"


def _sign_and_verify(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key.public_key().verify(key.sign(b"x", ec.ECDSA(hashes.SHA256())), b"x", ec.ECDSA(hashes.SHA256()))
    else:
        signature = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, b"x", padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("algorithm", ["ec-p256", "ec-p384", "rsa-3072"])
def test_roundtrip_through_an_encrypted_0600_file(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    store = SoftwareKeyStore(tmp_path / "keys", PASSPHRASE)
    key = store.generate("ca-root", algorithm)
    path = tmp_path / "keys" / "ca-root.key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    # PKCS#8 EncryptedPrivateKeyInfo (the PEM label is built here so no key-looking text is committed).
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED " + b"PRIVATE" + b" KEY-----")
    loaded = SoftwareKeyStore(tmp_path / "keys", PASSPHRASE).load("ca-root")
    assert loaded.public_key() == key.public_key()
    _sign_and_verify(loaded)
    assert store.labels() == ["ca-root"]


def test_attributes_say_it_is_a_software_key(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path, PASSPHRASE)
    store.generate("ca-root", "ec-p256")
    assert store.attributes("ca-root") == KeyAttributes(
        label="ca-root", sensitive=False, extractable=True, local=True, always_sensitive=False, never_extractable=False
    )


def test_wrong_passphrase_is_a_token_error_without_the_passphrase(tmp_path: Path) -> None:
    SoftwareKeyStore(tmp_path, PASSPHRASE).generate("k", "ec-p256")
    with pytest.raises(TokenError, match="wrong passphrase") as err:
        SoftwareKeyStore(tmp_path, WRONG).load("k")
    assert WRONG.decode() not in err.value.diagnostics() and PASSPHRASE.decode() not in err.value.diagnostics()
    assert PASSPHRASE.decode() not in repr(SoftwareKeyStore(tmp_path, PASSPHRASE))


def test_duplicate_label_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path, PASSPHRASE)
    store.generate("k", "ec-p256")
    before = (tmp_path / "k.key.pem").read_bytes()
    with pytest.raises(TokenError, match="^the software store already holds a key labelled 'k'$"):
        store.generate("k", "ec-p384")
    assert (tmp_path / "k.key.pem").read_bytes() == before


def test_labels_that_are_not_file_names_are_refused(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path / "keys", PASSPHRASE)
    with pytest.raises(InputError, match="key label must be"):
        store.generate("../outside", "ec-p256")
    assert not list(tmp_path.rglob("*.pem"))
    with pytest.raises(TokenError, match="^no key labelled 'absent' in the software store$"):
        store.load("absent")


def test_registry_opens_both_kinds_and_names_them() -> None:
    store = open_key_store("software", directory=Path("keys"), passphrase=PASSPHRASE)
    assert isinstance(store, SoftwareKeyStore) and store.kind == "software"
    with pytest.raises(ConfigError, match="^key_store.kind must be one of pkcs11, software \\(got 'hsm'\\)$"):
        open_key_store("hsm")


def test_wrapped_backup_needs_the_backup_allowance_and_the_right_key(tmp_path: Path) -> None:
    source = SoftwareKeyStore(tmp_path / "a", PASSPHRASE)
    key = source.generate("ca-backup", "ec-p256", extractable=True)
    source.generate("ca-locked", "ec-p256")
    with pytest.raises(TokenError, match="generated without a backup allowance"):
        source.wrap("ca-locked", bytes(32), 0x210A)
    kek = bytes(range(32))
    wrapped = source.wrap("ca-backup", kek, 0x210A)
    assert b"ca-backup" not in wrapped
    target = SoftwareKeyStore(tmp_path / "b", WRONG)
    with pytest.raises(TokenError, match="wrong key-encryption key or damaged backup"):
        target.unwrap("ca-backup", wrapped, bytes(32), 0x210A, key.public_key())
    with pytest.raises(TokenError, match="does not match the CA's public key"):
        target.unwrap("ca-backup", wrapped, kek, 0x210A, ec.generate_private_key(ec.SECP256R1()).public_key())
    restored = target.unwrap("ca-backup", wrapped, kek, 0x210A, key.public_key())
    assert restored.public_key() == key.public_key()
    assert SoftwareKeyStore(tmp_path / "b", WRONG).load("ca-backup").public_key() == key.public_key()
    target.destroy("ca-backup")
    assert target.labels() == []
    with pytest.raises(TokenError, match="no key labelled 'ca-backup'"):
        target.load("ca-backup")


def test_forbidding_export_withdraws_the_backup_allowance_and_says_the_key_stays_extractable(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path, PASSPHRASE)
    store.generate("ca-backup", "ec-p256", extractable=True)
    store.wrap("ca-backup", bytes(32), 0x210A)
    attributes = store.forbid_export("ca-backup")
    # Honest: a software key is a file on disk; it cannot be made unextractable, only refused to wrap().
    assert (attributes.sensitive, attributes.extractable) == (False, True)
    assert attributes.readback()["EXTRACTABLE"] is True and attributes.readback()["LABEL"] == "ca-backup"
    with pytest.raises(TokenError, match="generated without a backup allowance"):
        store.wrap("ca-backup", bytes(32), 0x210A)
    assert store.wrap_mechanisms() is None
