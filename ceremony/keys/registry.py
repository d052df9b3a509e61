"""The key-store registry: every implementation is registered here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ceremony.errors import ConfigError
from ceremony.keys.pkcs11 import Pkcs11KeyStore
from ceremony.keys.software import SoftwareKeyStore
from ceremony.keys.store import KeyStore

# Typed as factories of KeyStore so that mypy checks each class against the protocol.
KEY_STORES: dict[str, Callable[..., KeyStore]] = {"pkcs11": Pkcs11KeyStore, "software": SoftwareKeyStore}


def open_key_store(kind: str, **options: Any) -> KeyStore:
    """Open a key store of the given kind.

    Args:
        kind: ``pkcs11`` or ``software``.
        **options: The store's constructor arguments: ``module``, ``token_label``, ``pin`` for
            pkcs11; ``directory``, ``passphrase`` for software.

    Returns:
        The open key store.

    Raises:
        ConfigError: ``kind`` is not registered.
        TokenError: The store cannot be opened (missing token, wrong PIN).
    """
    try:
        factory = KEY_STORES[kind]
    except KeyError as exc:
        raise ConfigError(f"key_store.kind must be one of {', '.join(KEY_STORES)} (got {kind!r})") from exc
    return factory(**options)
