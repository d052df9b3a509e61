"""Test material for the key stores: test-only PINs, and a self-signed certificate made with a key under test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

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
