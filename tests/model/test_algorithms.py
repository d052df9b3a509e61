"""Key and signature algorithms: the workbench's names for keys, and RFC 5758's hash pairing."""

from __future__ import annotations

import typing

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.keys.software import SoftwareKeyStore
from ceremony.model.algorithms import KeyAlgorithm, key_algorithm_of, signature_hash

P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
RSA2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_key_algorithms_are_the_three_a_ca_may_use() -> None:
    assert typing.get_args(KeyAlgorithm) == ("ec-p256", "ec-p384", "rsa-3072")


@pytest.mark.parametrize(
    ("key", "name"),
    [
        (P256, "ec-p256"),
        (P384, "ec-p384"),
        (ec.generate_private_key(ec.SECP521R1()), "ec-p521"),
        (ec.generate_private_key(ec.SECP256K1()), "ec-secp256k1"),  # not a named curve of ours: its own name
        (RSA2048, "rsa-2048"),
    ],
)
def test_key_algorithm_of_names_the_public_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, name: str) -> None:
    assert key_algorithm_of(key.public_key()) == name


@pytest.mark.parametrize("algorithm", typing.get_args(KeyAlgorithm))
def test_every_key_algorithm_name_round_trips_through_a_generated_key(tmp_path, algorithm: KeyAlgorithm) -> None:  # type: ignore[no-untyped-def]
    key = SoftwareKeyStore(tmp_path, b"test-passphrase-not-secret").generate("k", algorithm)
    assert key_algorithm_of(key.public_key()) == algorithm


@pytest.mark.parametrize(
    ("key", "hash_name", "signature"),
    [
        (P256, "sha256", "ecdsa-with-SHA256"),
        (P384, "sha384", "ecdsa-with-SHA384"),
        (RSA2048, "sha256", "sha256WithRSAEncryption"),
    ],
)
def test_signature_hash_pairs_the_hash_with_the_key(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, hash_name: str, signature: str
) -> None:
    algorithm, name = signature_hash(key)
    assert (algorithm.name, name) == (hash_name, signature)
    assert isinstance(algorithm, hashes.SHA256 | hashes.SHA384)


def test_a_p384_key_never_signs_with_sha256() -> None:
    # RFC 5758 3.2: the hash matches the curve's strength; a P-384 CA signing SHA-256 would fail its profile.
    assert signature_hash(P384)[0].digest_size == 48
    assert signature_hash(P256)[0].digest_size == 32
