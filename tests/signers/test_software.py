"""Software key store: encrypted PKCS#8, 0600, honest attributes, wrong passphrase refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import TokenError
from ceremony.signers.registry import open_key_store
from ceremony.signers.software import SoftwareKeyStore

PASSPHRASE = b"test-passphrase-not-secret"


def test_roundtrip_mode_and_attributes(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path / "keys", PASSPHRASE)
    key = store.generate("ca-root", "ec-p256")
    path = tmp_path / "keys" / "ca-root.key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    loaded = store.load("ca-root")
    signature = loaded.sign(b"x", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    key.public_key().verify(signature, b"x", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    attrs = store.attributes("ca-root")
    assert (attrs.sensitive, attrs.extractable, attrs.never_extractable) == (False, True, False)


def test_wrong_passphrase_and_duplicate_label(tmp_path: Path) -> None:
    SoftwareKeyStore(tmp_path, PASSPHRASE).generate("k", "ec-p256")
    with pytest.raises(TokenError, match="wrong passphrase"):
        SoftwareKeyStore(tmp_path, b"another-passphrase-000").load("k")
    with pytest.raises(TokenError, match="already holds a key labelled 'k'"):
        SoftwareKeyStore(tmp_path, PASSPHRASE).generate("k", "ec-p256")


def test_registry_rejects_unknown_kinds() -> None:
    with pytest.raises(Exception, match="key_store.kind must be one of pkcs11, software"):
        open_key_store("hsm")
