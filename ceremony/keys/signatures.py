"""Signatures over short records (transcript seals, attestations, restore proofs): one place for the padding choices.

EC keys sign ECDSA with SHA-256, RSA keys PKCS#1 v1.5 with SHA-256, Ed25519 keys sign the bytes.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa


def sign(key: Any, data: bytes) -> bytes:
    """Sign ``data`` with an EC, RSA or Ed25519 private key (including keys that live on a token)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise TypeError(f"cannot sign with a {type(key).__name__}")


def verifies(public: Any, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` over ``data`` verifies under ``public`` (False for any other key type)."""
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True
