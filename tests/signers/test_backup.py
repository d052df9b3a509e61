"""Wrapped CA-key backup under a KEK split m-of-n, restored into a fresh SoftHSM2 token by any quorum."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.custody import CustodyError, combine, every_quorum, new_secret, split
from ceremony.errors import TokenError
from ceremony.signers.pkcs11 import Pkcs11KeyStore, find_softhsm_module, init_softhsm_token

pytestmark = pytest.mark.hsm
SOFTHSM_KWP = 0x210A  # SoftHSM's number for RFC 5649 AES key wrap with padding
CUSTODIANS = ["carol", "dave", "erin", "frank", "grace"]


def _token(tmp_path: Path, name: str) -> Pkcs11KeyStore:
    init_softhsm_token(tmp_path / name, tmp_path / f"{name}.conf", name, "so-pin-4242", "user-pin-4242")
    return Pkcs11KeyStore(str(find_softhsm_module()), name, "user-pin-4242")


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Root")])
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.slow
@pytest.mark.parametrize("m, n", [(2, 3), (3, 5)])
def test_every_quorum_restores_a_key_that_signs_for_the_ca(tmp_path: Path, m: int, n: int) -> None:
    source = _token(tmp_path, "source")
    ca_key = source.generate("ca-root", "ec-p256", extractable=True)
    certificate = _ca_certificate(ca_key)  # type: ignore[arg-type]
    attrs = source.attributes("ca-root")
    assert (attrs.sensitive, attrs.extractable, attrs.local, attrs.never_extractable) == (True, True, True, False)
    kek = new_secret(32)
    shares = split(kek, m, CUSTODIANS[:n])
    wrapped = source.wrap("ca-root", kek, SOFTHSM_KWP)
    assert len(wrapped) > 32
    target = _token(tmp_path, "target")
    for i, quorum in enumerate(every_quorum(shares, m)):
        restored = target.unwrap(
            f"ca-root-{i}", wrapped, combine([s.words for s in quorum]), SOFTHSM_KWP, certificate.public_key()
        )  # type: ignore[arg-type]
        back = target.attributes(f"ca-root-{i}")
        assert (back.sensitive, back.extractable) == (True, False)
        signature = restored.sign(b"restore test", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
        certificate.public_key().verify(signature, b"restore test", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    for short in every_quorum(shares, m - 1):
        with pytest.raises(CustodyError, match=f"{m - 1} distinct share\\(s\\) given; {m} are needed"):
            combine([s.words for s in short])


def test_wrong_kek_and_unextractable_keys_are_refused(tmp_path: Path) -> None:
    source = _token(tmp_path, "source")
    source.generate("ca-backup", "ec-p256", extractable=True)
    source.generate("ca-locked", "ec-p256")
    with pytest.raises(TokenError, match="generated without a backup allowance"):
        source.wrap("ca-locked", new_secret(32), SOFTHSM_KWP)
    wrapped = source.wrap("ca-backup", new_secret(32), SOFTHSM_KWP)
    public = source.load("ca-backup").public_key()
    target = _token(tmp_path, "target")
    with pytest.raises(TokenError, match="unwrap key 'x'"):
        target.unwrap("x", wrapped, new_secret(32), SOFTHSM_KWP, public)  # type: ignore[arg-type]
    assert "x" not in target.labels()


def test_destroyed_key_cannot_be_used(tmp_path: Path) -> None:
    store = _token(tmp_path, "t")
    store.generate("ca-old", "ec-p256")
    store.destroy("ca-old")
    assert "ca-old" not in store.labels()
    with pytest.raises(TokenError, match="no private key labelled 'ca-old'"):
        store.load("ca-old")
