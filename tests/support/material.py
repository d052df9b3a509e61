"""Test material for the key stores: test-only PINs, a self-signed certificate, a non-native key (as a token's)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.model.algorithms import CAPrivateKey

SO_PIN = "so-pin-7731"  # test-only PINs, never real ones
PIN = "user-pin-0193"
TOKEN = "test-token"
NAME = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Token Test CA")])


def self_signed(key: CAPrivateKey, algorithm: hashes.SHA256 | hashes.SHA384, **sign_options: Any) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(NAME)
        .issuer_name(NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, algorithm, **sign_options)
    )


class CountingKey(ec.EllipticCurvePrivateKey):
    """A CA key that counts its signatures (a non-native key, as a token's is)."""

    def __init__(self, inner: ec.EllipticCurvePrivateKey) -> None:
        self._inner = inner
        self.signatures = 0

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        self.signatures += 1
        return self._inner.sign(data, signature_algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._inner.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._inner.curve

    @property
    def key_size(self) -> int:
        return self._inner.key_size

    def exchange(self, *args: Any) -> bytes:
        raise NotImplementedError

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise NotImplementedError

    def private_bytes(self, *args: Any) -> bytes:
        raise NotImplementedError

    def __copy__(self) -> CountingKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> CountingKey:
        return self
