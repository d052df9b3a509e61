"""Symmetric keys: known-answer tests from published vectors, XOR components, and the token path.

Vectors and their provenance:
- RFC 3394 section 4.1 and 4.6: AES key wrap, 128-bit KEK / 128-bit key and 256-bit KEK / 256-bit key.
- RFC 5649 section 6: AES key wrap with padding, 192-bit KEK, 20-octet and 7-octet key data.
- NIST SP 800-38B appendix D.1: AES-128 CMAC, key 2b7e1516...; L = AES(K, 0^128) = 7df76b0c...
  (so the ECB key check value of that key is 7DF76B), and the CMAC tags of the empty message
  (bb1d6929...) and of the 16-octet message 6bc1bee2... (070a16b4...).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from ceremony.errors import InputError
from ceremony.keys.symmetric import (
    ComponentError,
    combine,
    kcv,
    new_key,
    parse_component,
    read_component_card,
    split,
    unwrap,
    wrap,
    write_component_card,
)

RFC3394 = [
    # (section, KEK, key data, ciphertext)
    ("4.1", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
     "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
    ("4.6", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
     "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
     "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"),
]  # fmt: skip
RFC5649 = [
    ("6, 20 octets", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "c37b7e6492584340bed12207808941155068f738",
     "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"),
    ("6, 7 octets", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "466f7250617369",
     "afbeb0f07dfbf5419200f2ccb50bb24f"),
]  # fmt: skip
SP800_38B_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")


@pytest.mark.parametrize("section, kek, key, wrapped", RFC3394, ids=[v[0] for v in RFC3394])
def test_rfc3394_vectors(section: str, kek: str, key: str, wrapped: str) -> None:
    assert aes_key_wrap(bytes.fromhex(kek), bytes.fromhex(key)) == bytes.fromhex(wrapped)
    assert aes_key_unwrap(bytes.fromhex(kek), bytes.fromhex(wrapped)) == bytes.fromhex(key)


@pytest.mark.parametrize("section, kek, key, wrapped", RFC5649, ids=[v[0] for v in RFC5649])
def test_rfc5649_vectors_through_our_wrap(section: str, kek: str, key: str, wrapped: str) -> None:
    assert wrap(bytes.fromhex(kek), bytes.fromhex(key)) == bytes.fromhex(wrapped)
    assert bytes(unwrap(bytes.fromhex(kek), bytes.fromhex(wrapped))) == bytes.fromhex(key)


def test_kcv_and_cmac_known_answers() -> None:
    assert kcv(SP800_38B_KEY) == "7DF76B"  # SP 800-38B D.1: L = AES-128(K, 0^128) = 7df76b0c...
    examples = [
        (b"", "bb1d6929e95937287fa37d129b756746"),
        (bytes.fromhex("6bc1bee22e409f96e93d7e117393172a"), "070a16b46b4d4144f79bdd9dd04a287c"),
    ]
    for message, tag in examples:
        mac = cmac.CMAC(algorithms.AES(SP800_38B_KEY))
        mac.update(message)
        assert mac.finalize().hex() == tag
    mac = cmac.CMAC(algorithms.AES(SP800_38B_KEY))
    mac.update(bytes(16))
    assert kcv(SP800_38B_KEY, "cmac") == mac.finalize()[:3].hex().upper()
    with pytest.raises(InputError, match="16, 24 or 32 octets"):
        kcv(b"short")


@pytest.mark.parametrize("custodians", [["carol", "dave"], ["carol", "dave", "erin"]])
@pytest.mark.parametrize("length", [16, 32])
def test_split_and_combine_round_trip(custodians: list[str], length: int) -> None:
    key = new_key(length)
    components = split(key, custodians)
    assert len(components) == len(custodians) and all(len(c.value) == length for c in components)
    assert all(c.value != bytes(key) for c in components)
    expected = {c.custodian: c.kcv for c in components}
    combined = combine([(c.custodian, c.value) for c in components], expected, kcv(key))
    assert combined == key
    assert "value" not in repr(components[0]) and components[0].value.hex() not in repr(components[0])


def test_a_wrong_component_is_refused_on_its_own_kcv_and_a_wrong_combination_on_the_combined_kcv() -> None:
    key = new_key(16)
    a, b = split(key, ["carol", "dave"])
    expected = {"carol": a.kcv, "dave": b.kcv}
    typo = bytearray(a.value)
    typo[5] ^= 0x01
    with pytest.raises(ComponentError, match=f"carol's component does not match its KCV {a.kcv}") as err:
        combine([("carol", bytes(typo)), ("dave", b.value)], expected, kcv(key))
    assert a.value.hex() not in str(err.value) and b.value.hex() not in str(err.value)
    # Components from another split: each matches the KCV recorded for it, the combination does not.
    c, d = split(new_key(16), ["carol", "dave"])
    with pytest.raises(ComponentError, match="the combined key does not match its KCV"):
        combine([("carol", c.value), ("dave", d.value)], {"carol": c.kcv, "dave": d.kcv}, kcv(key))
    with pytest.raises(ComponentError, match="no component from dave"):
        combine([("carol", a.value), ("erin", b.value)], expected, kcv(key))
    with pytest.raises(InputError, match="one person would hold two components"):
        split(key, ["carol", "carol"])


def test_component_cards_are_0600_and_read_back(tmp_path: Path) -> None:
    (component,) = split(new_key(32), ["carol", "dave"])[:1]
    card = write_component_card(
        tmp_path / "cards", ceremony_id="dmk-1", key_label="dmk-1", component=component, of=2, bag="TEB-1"
    )
    assert card.stat().st_mode & 0o777 == 0o600
    assert read_component_card(card) == component.value
    assert parse_component(" ".join(component.value.hex()[i : i + 4] for i in range(0, 64, 4))) == component.value
    with pytest.raises(ComponentError, match="hexadecimal"):
        parse_component("not hex")
