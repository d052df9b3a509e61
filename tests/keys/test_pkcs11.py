"""PKCS#11 key store on real SoftHSM2 tokens: generation, attributes, signing, errors, sessions, forks."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, ObjectClass

from ceremony.errors import InputError, TokenError
from ceremony.keys.pkcs11 import Pkcs11KeyStore, init_softhsm_token
from ceremony.keys.registry import open_key_store
from ceremony.model.algorithms import CAPrivateKey, KeyAlgorithm
from tests.support.material import NAME, PIN, SO_PIN, self_signed
from tests.support.processes import in_child
from tests.support.shapes import assert_never_leaves_the_token

pytestmark = pytest.mark.hsm
WRONG_PIN = "wrong-pin-5555"
ALGORITHMS: list[tuple[KeyAlgorithm, hashes.SHA256 | hashes.SHA384]] = [
    ("ec-p256", hashes.SHA256()),
    ("ec-p384", hashes.SHA384()),
    ("rsa-3072", hashes.SHA256()),
]


def _ec(key: CAPrivateKey) -> ec.EllipticCurvePrivateKey:
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@pytest.mark.parametrize("algorithm, hash_", ALGORITHMS)
def test_token_key_signs_a_certificate_that_verifies(
    store: Pkcs11KeyStore, algorithm: KeyAlgorithm, hash_: hashes.SHA256 | hashes.SHA384
) -> None:
    key = store.generate("ca-key", algorithm)
    assert isinstance(key, rsa.RSAPrivateKey if algorithm == "rsa-3072" else ec.EllipticCurvePrivateKey)
    cert = self_signed(key, hash_)
    cert.verify_directly_issued_by(cert)
    assert cert.public_key() == key.public_key() == store.load("ca-key").public_key()


@pytest.mark.parametrize("algorithm", [a for a, _ in ALGORITHMS])
def test_token_key_is_sensitive_and_never_extractable(store: Pkcs11KeyStore, algorithm: KeyAlgorithm) -> None:
    key = store.generate("ca-key", algorithm)
    assert_never_leaves_the_token(store.attributes("ca-key"))
    with pytest.raises(TokenError, match="^private key stays on the token$"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(TokenError, match="stays on the token"):
        key.private_numbers()


def test_token_private_key_can_only_sign(store: Pkcs11KeyStore, softhsm_module: str) -> None:
    store.generate("ca-key", "ec-p256")
    store.close()
    # Read back with python-pkcs11 directly, independently of the store's own attribute reader.
    token = pkcs11.lib(softhsm_module).get_token(token_label="test-token")
    with token.open(user_pin=PIN) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="ca-key")
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label="ca-key")
        allowed = {a: bool(private[a]) for a in (Attribute.SIGN, Attribute.TOKEN, Attribute.PRIVATE)}
        refused = {
            a: bool(private[a]) for a in (Attribute.DECRYPT, Attribute.UNWRAP, Attribute.DERIVE, Attribute.SIGN_RECOVER)
        }
        public_refused = {a: bool(public[a]) for a in (Attribute.ENCRYPT, Attribute.WRAP, Attribute.DERIVE)}
    assert all(allowed.values()), allowed
    assert not any(refused.values()), refused
    assert not any(public_refused.values()), public_refused


def test_a_backup_key_is_extractable_only_wrapped(store: Pkcs11KeyStore) -> None:
    store.generate("ca-backed-up", "ec-p256", extractable=True)
    attrs = store.attributes("ca-backed-up")
    assert (attrs.sensitive, attrs.extractable, attrs.local, attrs.always_sensitive, attrs.never_extractable) == (
        True,
        True,
        True,
        True,
        False,
    )


def test_token_key_signs_a_crl_that_verifies(store: Pkcs11KeyStore) -> None:
    key = store.generate("ca-crl", "ec-p384")
    now = datetime.now(timezone.utc)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(NAME)
        .last_update(now)
        .next_update(now + timedelta(days=7))
        .sign(key, hashes.SHA384())
    )
    assert crl.is_signature_valid(key.public_key())


def test_prehashed_ecdsa_signature_verifies(store: Pkcs11KeyStore) -> None:
    key = store.generate("ca-ec", "ec-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"to be signed")
    signature = key.sign(digest.finalize(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    key.public_key().verify(signature, b"to be signed", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(TokenError, match="stays on the token"):
        key.exchange(ec.ECDH(), key.public_key())


def test_rsa_pss_and_prehashed_pkcs1_signatures_verify(store: Pkcs11KeyStore) -> None:
    key = store.generate("ca-rsa", "rsa-3072")
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    cert = self_signed(key, hashes.SHA256(), rsa_padding=pss)
    cert.verify_directly_issued_by(cert)
    max_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.MAX_LENGTH)
    key.public_key().verify(key.sign(b"m", max_salt, hashes.SHA384()), b"m", max_salt, hashes.SHA384())
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"m")
    signature = key.sign(digest.finalize(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    key.public_key().verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(TokenError, match="stays on the token"):
        key.decrypt(b"\x00" * 384, padding.PKCS1v15())


def test_duplicate_label_is_refused_and_the_first_key_kept(store: Pkcs11KeyStore) -> None:
    first = store.generate("ca-dup", "ec-p256")
    with pytest.raises(TokenError, match="^token 'test-token' already holds a key labelled 'ca-dup'$"):
        store.generate("ca-dup", "ec-p384")
    assert store.labels() == ["ca-dup"]
    assert store.load("ca-dup").public_key() == first.public_key()


def test_unknown_algorithm_and_key_label_are_refused(store: Pkcs11KeyStore) -> None:
    with pytest.raises(
        InputError, match="^key algorithm must be one of ec-p256, ec-p384, rsa-3072 \\(got 'ec-p521'\\)$"
    ):
        store.generate("ca-x", "ec-p521")  # type: ignore[arg-type]
    with pytest.raises(TokenError, match="^no private key labelled 'ca-x' on token 'test-token'$"):
        store.load("ca-x")


@pytest.mark.parametrize("already_logged_in", [False, True], ids=["fresh", "token-already-logged-in"])
def test_wrong_pin_is_a_token_error_without_the_pin(
    new_token: Callable[..., Path], softhsm_module: str, already_logged_in: bool
) -> None:
    new_token()
    right = Pkcs11KeyStore(softhsm_module, "test-token", PIN) if already_logged_in else None
    with pytest.raises(TokenError, match="PIN incorrect") as err:
        Pkcs11KeyStore(softhsm_module, "test-token", WRONG_PIN)
    assert WRONG_PIN not in err.value.diagnostics() and PIN not in err.value.diagnostics()
    if right is not None:
        assert right.labels() == []
        assert PIN not in repr(right)
        right.close()


def test_missing_token_is_named(store: Pkcs11KeyStore, softhsm_module: str) -> None:
    with pytest.raises(TokenError, match="^no token labelled 'no-such-token' in "):
        Pkcs11KeyStore(softhsm_module, "no-such-token", PIN)


def test_stores_on_one_token_share_one_login(store: Pkcs11KeyStore, softhsm_module: str) -> None:
    key = _ec(store.generate("ca-shared", "ec-p256"))
    other = open_key_store("pkcs11", module=softhsm_module, token_label="test-token", pin=PIN)
    assert isinstance(other, Pkcs11KeyStore) and other.kind == "pkcs11"
    store.close()  # must not log the other store out
    signature = _ec(other.load("ca-shared")).sign(b"still logged in", ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(signature, b"still logged in", ec.ECDSA(hashes.SHA256()))
    other.close()


def _sign_in_child(store: Pkcs11KeyStore, queue: Any) -> None:
    key = _ec(store.load("ca-fork"))
    queue.put(key.sign(b"from the child", ec.ECDSA(hashes.SHA256())))


def test_a_forked_worker_signs_with_its_own_session(store: Pkcs11KeyStore) -> None:
    key = _ec(store.generate("ca-fork", "ec-p256"))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sign_in_child, args=(store, queue))
    child.start()
    signature = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    key.public_key().verify(signature, b"from the child", ec.ECDSA(hashes.SHA256()))
    parent_signature = _ec(store.load("ca-fork")).sign(b"parent still works", ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(parent_signature, b"parent still works", ec.ECDSA(hashes.SHA256()))


def _labels_after_generating(conf: Path, module: str, label: str) -> list[str]:
    other = Pkcs11KeyStore(module, "test-token", PIN, conf=conf)
    other.generate(label, "ec-p256")
    try:
        return other.labels()
    finally:
        other.close()


def test_a_process_keeps_one_token_configuration(
    tmp_path: Path, new_token: Callable[..., Path], softhsm_module: str
) -> None:
    conf_a = new_token(where="workspace-a")
    a = Pkcs11KeyStore(softhsm_module, "test-token", PIN, conf=conf_a)
    key_a = _ec(a.generate("ca-a", "ec-p256"))
    conf_b = tmp_path / "workspace-b" / "softhsm2.conf"
    # A second token directory (same label) cannot be initialised or opened here: the library reads
    # SOFTHSM2_CONF once, and re-pointing it would re-point store a too.
    with pytest.raises(TokenError, match="configured for .*workspace-a.*used from a process of its own"):
        init_softhsm_token(tmp_path / "workspace-b" / "tokens", conf_b, "test-token", SO_PIN, PIN,
                           module=softhsm_module)  # fmt: skip
    with pytest.raises(TokenError, match="configured for .*workspace-a"):
        Pkcs11KeyStore(softhsm_module, "test-token", PIN, conf=conf_b)
    # From a process of its own, the second token is made and used; the first is untouched by it.
    in_child(init_softhsm_token, tmp_path / "workspace-b" / "tokens", conf_b, "test-token", SO_PIN, PIN,
             module=softhsm_module)  # fmt: skip
    assert in_child(_labels_after_generating, conf_b, softhsm_module, "ca-b") == ["ca-b"]
    assert a.labels() == ["ca-a"]
    signature = _ec(a.load("ca-a")).sign(b"a again", ec.ECDSA(hashes.SHA256()))
    key_a.public_key().verify(signature, b"a again", ec.ECDSA(hashes.SHA256()))
    a.close()


def test_init_writes_a_local_conf_without_running_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, softhsm_module: str
) -> None:
    def no_commands(*args: object, **kwargs: object) -> None:
        raise AssertionError("token initialisation must not run a command (PINs would be on its command line)")

    monkeypatch.setattr(subprocess, "Popen", no_commands)
    conf = tmp_path / "softhsm2.conf"
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    init_softhsm_token(tmp_path / "tokens", conf, "test-token", SO_PIN, PIN, module=softhsm_module)
    assert conf.read_text(encoding="utf-8").splitlines()[:3] == [
        f"directories.tokendir = {tmp_path / 'tokens'}",
        "objectstore.backend = file",
        "log.level = ERROR",
    ]
    assert PIN not in conf.read_text(encoding="utf-8")
    with pytest.raises(TokenError, match="^a token labelled 'test-token' already exists in "):
        init_softhsm_token(tmp_path / "tokens", conf, "test-token", SO_PIN, PIN, module=softhsm_module)
    with pytest.raises(InputError, match="token label must be 1 to 32 bytes"):
        init_softhsm_token(tmp_path / "tokens", conf, "x" * 33, SO_PIN, PIN, module=softhsm_module)
    with pytest.raises(InputError, match="^user PIN must be 4-255 characters$"):
        init_softhsm_token(tmp_path / "other", conf, "other-token", SO_PIN, "123", module=softhsm_module)
    fresh = Pkcs11KeyStore(softhsm_module, "test-token", PIN)
    assert fresh.labels() == []
    fresh.close()


def test_neither_store_nor_key_can_be_pickled(store: Pkcs11KeyStore) -> None:
    key = store.generate("ca-pickle", "ec-p256")
    for thing in (store, key):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(thing)


# --- the signing path: the key found once per session ---------------------------------------------------------
def test_a_key_is_found_once_for_any_number_of_signatures(
    store: Pkcs11KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _ec(store.generate("ca-often", "ec-p256"))
    found: list[str] = []
    real = store._object

    def counting(label: str, object_class: ObjectClass) -> Any:
        found.append(label)
        return real(label, object_class)

    monkeypatch.setattr(store, "_object", counting)
    for n in range(5):
        key.public_key().verify(key.sign(b"%d" % n, ec.ECDSA(hashes.SHA256())), b"%d" % n, ec.ECDSA(hashes.SHA256()))
    assert found == ["ca-often"]


def test_a_destroyed_key_signs_nothing_more(store: Pkcs11KeyStore) -> None:
    key = _ec(store.generate("ca-gone", "ec-p256"))
    key.sign(b"before", ec.ECDSA(hashes.SHA256()))  # its object is now known to the session
    store.destroy("ca-gone")
    with pytest.raises(TokenError, match="^no private key labelled 'ca-gone' on token 'test-token'$"):
        key.sign(b"after", ec.ECDSA(hashes.SHA256()))


def _replace_key(store: Pkcs11KeyStore, label: str) -> bytes:
    store.destroy(label)
    return (
        _ec(store.generate(label, "ec-p256"))
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_a_key_replaced_by_another_process_is_found_afresh(store: Pkcs11KeyStore) -> None:
    """The object this session knew is gone (destroyed by another process, its label given to a new key): the
    signature is the label's key's now, as when every signature looked the key up."""
    key = _ec(store.generate("ca-swapped", "ec-p256"))
    key.sign(b"before", ec.ECDSA(hashes.SHA256()))
    spki = in_child(_replace_key, store, "ca-swapped")
    new = serialization.load_der_public_key(spki)
    assert isinstance(new, ec.EllipticCurvePublicKey)
    signature = key.sign(b"after", ec.ECDSA(hashes.SHA256()))
    new.verify(signature, b"after", ec.ECDSA(hashes.SHA256()))
