"""The key-store interface: protection attributes as a transcript records them, and one protocol both stores keep."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from ceremony.errors import TokenError
from ceremony.keys.pkcs11 import Pkcs11KeyStore
from ceremony.keys.software import SoftwareKeyStore
from ceremony.keys.store import (
    ExportControl,
    KeyAttributes,
    KeyStore,
    choose_wrap_mechanism,
    export_control,
    wrap_mechanism_name,
)

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


def test_readback_adds_modifiable_label_and_id() -> None:
    attrs = KeyAttributes("ca-root", True, False, True, True, False, modifiable=True, key_id="00ff")
    assert attrs.readback() == {**attrs.record(), "MODIFIABLE": True, "LABEL": "ca-root", "ID": "00ff"}


@pytest.mark.parametrize(
    "offered, requested, chosen",
    [
        ({0x2109, 0x210A, 0x210B}, None, 0x210B),  # a PKCS#11 3.0 HSM: KWP
        ({0x2109, 0x210A}, None, 0x210A),  # SoftHSM2: its own RFC 5649 number
        ({0x2109, 0x210A, 0x210B}, 0x210A, 0x210A),  # a ceremony file's choice, on the token's list
        ({0x2109, 0x210A}, 0x2109, 0x2109),
    ],
)
def test_the_wrap_mechanism_comes_from_the_token_s_list(offered: set[int], requested: int | None, chosen: int) -> None:
    assert choose_wrap_mechanism(frozenset(offered), requested, token="t") == chosen


def test_a_mechanism_the_token_lacks_is_refused_in_one_line_naming_it() -> None:
    with pytest.raises(TokenError) as err:
        choose_wrap_mechanism(frozenset({0x2109, 0x210A}), 0x210B, token="hsm-a")
    assert (
        err.value.message == "token 'hsm-a' does not offer wrap mechanism CKM_AES_KEY_WRAP_KWP (PKCS#11 3.0, RFC 5649)"
    )
    with pytest.raises(TokenError, match=r"^token 'hsm-a' offers no RFC 5649 key wrap \(neither 0x210B nor 0x210A\)$"):
        choose_wrap_mechanism(frozenset({0x2109}), None, token="hsm-a")
    assert wrap_mechanism_name(0x1234) == "0x1234"


@pytest.mark.parametrize("implementation", [SoftwareKeyStore, Pkcs11KeyStore])
def test_both_stores_keep_the_export_control_protocol(
    implementation: type[SoftwareKeyStore] | type[Pkcs11KeyStore],
) -> None:
    for name in ("forbid_export", "wrap_mechanisms"):
        wanted = [(p.name, p.kind) for p in inspect.signature(getattr(ExportControl, name)).parameters.values()]
        got = [(p.name, p.kind) for p in inspect.signature(getattr(implementation, name)).parameters.values()]
        assert got == wanted, f"{implementation.__name__}.{name}"


def test_a_store_without_export_control_is_refused_in_one_line(tmp_path: Path) -> None:
    store = SoftwareKeyStore(tmp_path, b"test-passphrase-not-secret")
    assert export_control(store) is store
    with pytest.raises(TokenError, match="^key store object cannot take part in a key backup or restore ceremony$"):
        export_control(object())
