"""Signatures over short records: the padding each key type uses, and verification that never raises."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from ceremony.keys.signatures import sign, verifies
from tests.support.material import CountingKey

DATA = b'{"event":"seal","sha256":"00"}'


def _keys() -> dict[str, Any]:
    return {
        "ec-p256": ec.generate_private_key(ec.SECP256R1()),
        "ec-p384": ec.generate_private_key(ec.SECP384R1()),
        "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


KEYS = _keys()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_a_signature_verifies_and_nothing_else_does(name: str) -> None:
    key = KEYS[name]
    signature = sign(key, DATA)
    assert verifies(key.public_key(), signature, DATA)
    assert not verifies(key.public_key(), signature, DATA + b" ")
    other = next(k for n, k in KEYS.items() if n != name)
    assert not verifies(other.public_key(), signature, DATA)


@pytest.mark.parametrize("name", ["ec-p256", "ec-p384"])
def test_ec_keys_sign_ecdsa_with_sha256_whatever_the_curve(name: str) -> None:
    key = KEYS[name]
    key.public_key().verify(sign(key, DATA), DATA, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sign(key, DATA), DATA, ec.ECDSA(hashes.SHA384()))


def test_rsa_keys_sign_pkcs1_v15_with_sha256() -> None:
    key = KEYS["rsa-2048"]
    signature = sign(key, DATA)
    key.public_key().verify(signature, DATA, padding.PKCS1v15(), hashes.SHA256())
    assert sign(key, DATA) == signature  # PKCS#1 v1.5 is deterministic; PSS would not be
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, DATA, pss, hashes.SHA256())


def test_ed25519_keys_sign_the_bytes() -> None:
    key = KEYS["ed25519"]
    key.public_key().verify(sign(key, DATA), DATA)
    assert sign(key, DATA) == key.sign(DATA)


def test_a_key_held_elsewhere_signs_through_its_own_sign_method() -> None:
    key = CountingKey(ec.generate_private_key(ec.SECP256R1()))
    assert verifies(key.public_key(), sign(key, DATA), DATA)


def test_any_other_key_type_cannot_sign() -> None:
    with pytest.raises(TypeError, match="cannot sign with a Ed448PrivateKey"):
        sign(ed448.Ed448PrivateKey.generate(), DATA)
    with pytest.raises(TypeError, match="cannot sign with a bytes"):
        sign(b"not a key", DATA)


@pytest.mark.parametrize("name", sorted(KEYS))
@pytest.mark.parametrize("signature", [b"", b"abc", bytes(64), bytes(256), bytes.fromhex("3006020100020100")])
def test_a_malformed_signature_is_false_not_an_exception(name: str, signature: bytes) -> None:
    assert verifies(KEYS[name].public_key(), signature, DATA) is False


def test_a_public_key_of_another_type_never_verifies() -> None:
    ed448_key = ed448.Ed448PrivateKey.generate()
    assert verifies(ed448_key.public_key(), ed448_key.sign(DATA), DATA) is False
    assert verifies("not a key", b"", DATA) is False
