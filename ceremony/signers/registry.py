"""The key-store registry: every implementation is registered here and nowhere else."""

from __future__ import annotations

from typing import Any

from ceremony.errors import ConfigError
from ceremony.signers import KeyStore
from ceremony.signers.pkcs11 import Pkcs11KeyStore
from ceremony.signers.software import SoftwareKeyStore

KEY_STORES: dict[str, type[Any]] = {"pkcs11": Pkcs11KeyStore, "software": SoftwareKeyStore}


def open_key_store(kind: str, **options: Any) -> KeyStore:
    """Open the key store of ``kind`` with its options (module/token_label/pin, or directory/passphrase)."""
    try:
        cls = KEY_STORES[kind]
    except KeyError as exc:
        raise ConfigError(f"key_store.kind must be one of {', '.join(KEY_STORES)} (got {kind!r})") from exc
    store: KeyStore = cls(**options)
    return store
