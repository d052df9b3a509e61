"""The key-store registry: the two kinds, their options passed through, and an unknown kind refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import ConfigError, TokenError
from ceremony.keys.pkcs11 import Pkcs11KeyStore
from ceremony.keys.registry import KEY_STORES, open_key_store
from ceremony.keys.software import SoftwareKeyStore

PASSPHRASE = b"test-passphrase-not-secret"


def test_exactly_two_kinds_are_registered() -> None:
    assert KEY_STORES == {"pkcs11": Pkcs11KeyStore, "software": SoftwareKeyStore}


def test_the_software_kind_gets_its_options(tmp_path: Path) -> None:
    store = open_key_store("software", directory=tmp_path / "keys", passphrase=PASSPHRASE)
    assert isinstance(store, SoftwareKeyStore)
    assert store.kind == "software"
    assert store.directory == tmp_path / "keys"
    assert store.labels() == []


@pytest.mark.parametrize("kind", ["hsm", "", "Software", "PKCS11"])
def test_an_unknown_kind_is_a_config_error_naming_the_kinds(kind: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_key_store(kind, directory=Path("keys"), passphrase=PASSPHRASE)
    assert err.value.message == f"key_store.kind must be one of pkcs11, software (got {kind!r})"
    assert isinstance(err.value.__cause__, KeyError)


def test_the_store_s_own_refusals_come_through(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="at least 16 characters"):
        open_key_store("software", directory=tmp_path, passphrase=b"short")
    with pytest.raises(TokenError, match="PKCS#11 module /nonexistent/libsofthsm2.so not found"):
        open_key_store("pkcs11", module="/nonexistent/libsofthsm2.so", token_label="t", pin="user-pin-0193")


def test_an_option_the_store_does_not_take_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        open_key_store("software", directory=tmp_path, passphrase=PASSPHRASE, pin="1234")
