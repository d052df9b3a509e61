"""Key and signature algorithms the CAs use: the names, the key types, and RFC 5758's hash pairing."""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.model.der import NAMED_CURVES

KeyAlgorithm = Literal["ec-p256", "ec-p384", "rsa-3072"]


CAPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


CAPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def key_algorithm_of(key: CAPublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return NAMED_CURVES.get(key.curve.name, (f"ec-{key.curve.name}", 0))[0]
    return f"rsa-{key.key_size}"


def signature_hash(key: CAPrivateKey) -> tuple[hashes.SHA256 | hashes.SHA384, str]:
    """Hash and signature algorithm name a CA key signs with (RFC 5758 3.2 pairing)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384(), "ecdsa-with-SHA384"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return hashes.SHA256(), "ecdsa-with-SHA256"
    return hashes.SHA256(), "sha256WithRSAEncryption"
