"""PKCS#11 key store on a real SoftHSM2 token: generation, attributes, signing, errors, forked workers."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import TokenError
from ceremony.signers.pkcs11 import Pkcs11KeyStore, find_softhsm_module, init_softhsm_token
from tests.shapes import assert_never_leaves_the_token

pytestmark = pytest.mark.hsm
PIN = "user-pin-0193"  # test-only token PIN, never a real one


@pytest.fixture
def store(tmp_path: Path) -> Pkcs11KeyStore:
    module = find_softhsm_module()
    assert module is not None
    init_softhsm_token(tmp_path / "token", tmp_path / "softhsm2.conf", "test-token", "so-pin-7731", PIN)
    ks = Pkcs11KeyStore(module, "test-token", PIN)
    yield ks  # type: ignore[misc]
    ks.close()


def _self_signed(key: ec.EllipticCurvePrivateKey, algorithm: hashes.HashAlgorithm) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, algorithm)
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "algorithm, hash_", [("ec-p256", hashes.SHA256()), ("ec-p384", hashes.SHA384()), ("rsa-3072", hashes.SHA256())]
)
def test_token_keys_sign_certificates_that_verify(
    store: Pkcs11KeyStore, algorithm: str, hash_: hashes.HashAlgorithm
) -> None:
    key = store.generate(f"ca-{algorithm}", algorithm)  # type: ignore[arg-type]
    cert = _self_signed(key, hash_)  # type: ignore[arg-type]
    cert.verify_directly_issued_by(cert)
    assert store.load(f"ca-{algorithm}").public_key() == key.public_key()


def test_ca_keys_are_sensitive_and_never_extractable(store: Pkcs11KeyStore) -> None:
    store.generate("ca-root", "ec-p256")
    attrs = store.attributes("ca-root")
    assert_never_leaves_the_token(attrs)


def test_private_key_material_is_refused(store: Pkcs11KeyStore) -> None:
    key = store.generate("ca-x", "ec-p256")
    with pytest.raises(TokenError, match="stays on the token"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(TokenError, match="stays on the token"):
        key.private_numbers()


def test_duplicate_label_is_refused(store: Pkcs11KeyStore) -> None:
    store.generate("ca-dup", "ec-p256")
    with pytest.raises(TokenError, match="already holds a key labelled 'ca-dup'"):
        store.generate("ca-dup", "ec-p256")


def test_wrong_pin_is_a_token_error_without_the_pin(store: Pkcs11KeyStore) -> None:
    wrong = Pkcs11KeyStore(store.module, "test-token", "wrong-pin-5555")
    with pytest.raises(TokenError) as err:
        wrong.labels()
    assert "PIN incorrect" in err.value.message and "wrong-pin-5555" not in err.value.message
    assert "wrong-pin-5555" not in repr(wrong)


def test_missing_token_is_named(store: Pkcs11KeyStore) -> None:
    with pytest.raises(TokenError, match="no token labelled 'nope'"):
        Pkcs11KeyStore(store.module, "nope", PIN).labels()


def _sign_in_child(store: Pkcs11KeyStore, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    key = store.load("ca-fork")
    queue.put(key.sign(b"from the child", ec.ECDSA(hashes.SHA256())))  # type: ignore[call-arg]


def test_a_forked_worker_signs_with_its_own_session(store: Pkcs11KeyStore) -> None:
    key = store.generate("ca-fork", "ec-p256")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sign_in_child, args=(store, queue))
    child.start()
    signature = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    key.public_key().verify(signature, b"from the child", ec.ECDSA(hashes.SHA256()))
    store.load("ca-fork").sign(b"parent still works", ec.ECDSA(hashes.SHA256()))
