"""The key-store interface: protection attributes as a transcript records them, and one protocol both stores keep."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from ceremony.keys.pkcs11 import Pkcs11KeyStore
from ceremony.keys.software import SoftwareKeyStore
from ceremony.keys.store import KeyAttributes, KeyStore

PKCS11_NAMES = ["SENSITIVE", "EXTRACTABLE", "LOCAL", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE", "WRAP_WITH_TRUSTED"]


def test_record_names_every_attribute_as_pkcs11_does() -> None:
    attrs = KeyAttributes(
        label="ca-root",
        sensitive=True,
        extractable=False,
        local=True,
        always_sensitive=True,
        never_extractable=True,
        wrap_with_trusted=True,
    )
    assert attrs.record() == {
        "SENSITIVE": True,
        "EXTRACTABLE": False,
        "LOCAL": True,
        "ALWAYS_SENSITIVE": True,
        "NEVER_EXTRACTABLE": True,
        "WRAP_WITH_TRUSTED": True,
    }
    assert list(attrs.record()) == PKCS11_NAMES


@pytest.mark.parametrize("field", ["sensitive", "extractable", "local", "always_sensitive", "never_extractable"])
def test_record_maps_each_field_to_its_own_name(field: str) -> None:
    everything_false = KeyAttributes("k", False, False, False, False, False)
    one = dataclasses.replace(everything_false, **{field: True})  # type: ignore[arg-type]
    assert [name for name, value in one.record().items() if value] == [field.upper()]


def test_wrap_with_trusted_defaults_to_false_and_the_label_is_not_recorded() -> None:
    attrs = KeyAttributes("ca-root", True, False, True, True, True)
    assert attrs.wrap_with_trusted is False
    assert attrs.record()["WRAP_WITH_TRUSTED"] is False
    assert "ca-root" not in attrs.record() and "label" not in {k.lower() for k in attrs.record()}


def test_attributes_are_frozen() -> None:
    attrs = KeyAttributes("k", True, False, True, True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attrs.extractable = True  # type: ignore[misc]


def test_the_software_store_records_what_it_honestly_is(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path, b"test-passphrase-not-secret")
    store.generate("ca-root", "ec-p256")
    assert store.attributes("ca-root").record() == {
        "SENSITIVE": False,
        "EXTRACTABLE": True,
        "LOCAL": True,
        "ALWAYS_SENSITIVE": False,
        "NEVER_EXTRACTABLE": False,
        "WRAP_WITH_TRUSTED": False,
    }


def _protocol_methods() -> list[str]:
    return sorted(name for name, value in vars(KeyStore).items() if callable(value) and not name.startswith("_"))


@pytest.mark.parametrize("implementation", [SoftwareKeyStore, Pkcs11KeyStore])
def test_both_stores_keep_the_protocol_s_signatures(
    implementation: type[SoftwareKeyStore] | type[Pkcs11KeyStore],
) -> None:
    methods = _protocol_methods()
    assert "generate" in methods and "close" in methods and len(methods) == 15
    for name in methods:
        wanted = [(p.name, p.kind) for p in inspect.signature(getattr(KeyStore, name)).parameters.values()]
        got = [(p.name, p.kind) for p in inspect.signature(getattr(implementation, name)).parameters.values()]
        assert got == wanted, f"{implementation.__name__}.{name}"
    assert implementation.kind in ("pkcs11", "software")
