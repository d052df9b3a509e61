"""Wrapped CA-key backup under a KEK split m-of-n, restored into a fresh SoftHSM2 token by any quorum."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, ObjectClass

from ceremony.errors import TokenError
from ceremony.keys.custody import CustodyError, combine, every_quorum, new_secret, split
from ceremony.keys.pkcs11 import Pkcs11KeyStore
from tests.support.material import PIN, self_signed

pytestmark = pytest.mark.hsm
SOFTHSM_KWP = 0x210A  # SoftHSM's number for RFC 5649 AES key wrap with padding
CUSTODIANS = ["carol", "dave", "erin", "frank", "grace"]


@pytest.fixture
def open_store(new_token: Callable[..., Path], softhsm_module: str) -> Callable[[str], Pkcs11KeyStore]:
    """A fresh token labelled ``name`` (beside the others in this test's token directory, as a restore
    token sits beside the CA token in a workspace's), logged in."""

    def make(name: str) -> Pkcs11KeyStore:
        new_token(label=name)
        return Pkcs11KeyStore(softhsm_module, name, PIN)

    return make


@pytest.mark.slow
@pytest.mark.parametrize("m, n", [(2, 3), (3, 5)])
def test_every_quorum_restores_a_key_that_signs_for_the_ca(
    open_store: Callable[[str], Pkcs11KeyStore], m: int, n: int
) -> None:
    source = open_store("source")
    ca_key = source.generate("ca-root", "ec-p256", extractable=True)
    certificate = self_signed(ca_key, hashes.SHA256())
    attrs = source.attributes("ca-root")
    assert (attrs.sensitive, attrs.extractable, attrs.local, attrs.never_extractable) == (True, True, True, False)
    kek = new_secret(32)
    shares = split(kek, m, CUSTODIANS[:n])
    wrapped = source.wrap("ca-root", kek, SOFTHSM_KWP)
    assert len(wrapped) > 32
    target = open_store("target")
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


def test_wrong_kek_and_unextractable_keys_are_refused(open_store: Callable[[str], Pkcs11KeyStore]) -> None:
    source = open_store("source")
    source.generate("ca-backup", "ec-p256", extractable=True)
    source.generate("ca-locked", "ec-p256")
    with pytest.raises(TokenError, match="generated without a backup allowance"):
        source.wrap("ca-locked", new_secret(32), SOFTHSM_KWP)
    wrapped = source.wrap("ca-backup", new_secret(32), SOFTHSM_KWP)
    public = source.load("ca-backup").public_key()
    target = open_store("target")
    with pytest.raises(TokenError, match="unwrap key 'x'"):
        target.unwrap("x", wrapped, new_secret(32), SOFTHSM_KWP, public)  # type: ignore[arg-type]
    assert "x" not in target.labels()


def test_destroyed_key_cannot_be_used(open_store: Callable[[str], Pkcs11KeyStore]) -> None:
    store = open_store("t")
    store.generate("ca-old", "ec-p256")
    store.destroy("ca-old")
    assert "ca-old" not in store.labels()
    with pytest.raises(TokenError, match="no private key labelled 'ca-old'"):
        store.load("ca-old")


def test_forbidding_export_clears_extractable_for_good(open_store: Callable[[str], Pkcs11KeyStore]) -> None:
    store = open_store("t")
    store.generate("ca-root", "ec-p256", extractable=True)
    store.wrap("ca-root", new_secret(32), SOFTHSM_KWP)
    before = store.attributes("ca-root")
    assert (before.extractable, before.modifiable) == (True, True)
    after = store.forbid_export("ca-root")
    assert after.readback() == {
        "SENSITIVE": True,
        "EXTRACTABLE": False,
        "LOCAL": True,
        "ALWAYS_SENSITIVE": True,
        "NEVER_EXTRACTABLE": False,  # it was extractable once: PKCS#11 keeps that on record
        "WRAP_WITH_TRUSTED": False,
        "MODIFIABLE": True,
        "LABEL": "ca-root",
        "ID": before.key_id,
    }
    with pytest.raises(TokenError, match="is not EXTRACTABLE .*; it cannot be wrapped"):
        store.wrap("ca-root", new_secret(32), SOFTHSM_KWP)
    assert store.forbid_export("ca-root") == after  # again: nothing to change
    # PKCS#11 allows EXTRACTABLE True -> False only: the token refuses to set it back.
    key = store._object("ca-root", ObjectClass.PRIVATE_KEY)
    with pytest.raises(pkcs11.PKCS11Error):
        key[Attribute.EXTRACTABLE] = True
    assert not store.attributes("ca-root").extractable


def test_the_token_lists_its_aes_key_wraps(open_store: Callable[[str], Pkcs11KeyStore]) -> None:
    # SoftHSM2 2.6: RFC 3394 and its own RFC 5649 number, no KWP (softhsm/SoftHSMv2#726).
    assert open_store("t").wrap_mechanisms() == frozenset({0x2109, 0x210A})
