"""The shared signing pipeline: the profile's algorithm, a lint before the real signature, and checks after it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import InputError, StateError
from ceremony.issue.recovery import issuer_of
from ceremony.issue.signing import IssuanceError, new_serial, sign_checked
from ceremony.issue.single import create_ca
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import Finding, Severity
from ceremony.model.der import serial_hex
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, Issuer, build_tbs, key_identifier
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.material import CountingKey
from tests.support.shapes import assert_is_device_cert

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
DEVICE = get_profile("ss1sp-device")


@pytest.fixture(scope="module")
def issuing() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = build_tbs(
        Identity(role="00", name="Root"), root_key.public_key(), get_profile("ss1spca-root"), None, 2**120 + 1, NOW
    ).sign(root_key, hashes.SHA256())
    cert = build_tbs(
        Identity(role="07", name="Issuing"),
        key.public_key(),
        get_profile("ss1spca-issuing"),
        Issuer(root.subject, key_identifier(root_key.public_key()), root.not_valid_after_utc),
        2**120 + 2,
        NOW,
    ).sign(root_key, hashes.SHA256())
    return key, cert


def _device_builder(cert: x509.Certificate, eui64: str = "00DB123456789001") -> x509.CertificateBuilder:
    issuer = Issuer(cert.subject, key_identifier(cert.public_key()), cert.not_valid_after_utc)  # type: ignore[arg-type]
    subject = ec.generate_private_key(ec.SECP256R1()).public_key()
    return build_tbs(Identity(eui64=eui64, usage="ds"), subject, DEVICE, issuer, 2**125 + 3, NOW)


def test_a_clean_certificate_is_signed_once_by_the_ca_key(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    key, cert = issuing
    ca_key = CountingKey(key)
    discarded: list[str] = []
    issued = sign_checked(_device_builder(cert), DEVICE, ca_key, cert, on_discard=lambda c, why: discarded.append(why))
    assert ca_key.signatures == 1  # the lint copy is signed by a throwaway key
    issued.verify_directly_issued_by(cert)
    assert_is_device_cert(issued, cert, "00DB123456789001", "ds", DEVICE.hw_type_oid)  # type: ignore[arg-type]
    assert discarded == []


def test_a_root_is_checked_against_itself() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    profile = get_profile("ss1spca-root")
    builder = build_tbs(Identity(role="00", name="Root"), key.public_key(), profile, None, 2**120 + 9, NOW)
    root = sign_checked(builder, profile, key, None)
    root.verify_directly_issued_by(root)
    assert root.signature_hash_algorithm is not None and root.signature_hash_algorithm.name == "sha384"


@pytest.mark.parametrize(
    ("ca_key", "name"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "ecdsa-with-SHA384"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "sha256WithRSAEncryption"),
    ],
)
def test_a_profile_that_forbids_the_ca_s_signature_algorithm_is_refused(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], ca_key: Any, name: str
) -> None:
    with pytest.raises(InputError) as err:
        sign_checked(_device_builder(issuing[1]), DEVICE, ca_key, issuing[1])
    assert err.value.message == f"the CA signs with {name}; profile ss1sp-device allows ecdsa-with-SHA256"


def test_a_pre_issuance_lint_failure_signs_nothing_for_real(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    key, cert = issuing
    ca_key = CountingKey(key)
    discarded: list[str] = []
    # A device certificate presented as an organisation's: its empty subject fails that profile.
    organisation = get_profile("ss1sp-organisation")
    with pytest.raises(IssuanceError) as err:
        sign_checked(_device_builder(cert), organisation, ca_key, cert, on_discard=lambda c, why: discarded.append(why))
    assert err.value.message.startswith("pre-issuance lint failed for profile ss1sp-organisation: ")
    assert "ERROR profile.subject.attribute_missing: subject has no OU" in err.value.message
    assert err.value.message.count("ERROR profile.") == 3  # the first three findings are quoted
    assert (ca_key.signatures, discarded) == (0, [])


def _fail_after_signing(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The lint passes the throwaway-signed copy and fails the really signed certificate."""
    real = check_certificate
    seen: list[bytes] = []

    def check(der: bytes, profile: Any, **kw: Any) -> list[Finding]:
        seen.append(der)
        if len(seen) == 1:
            return real(der, profile, **kw)
        return [Finding(Severity.ERROR, "profile.device.planted", "planted for the test", "")]

    monkeypatch.setattr("ceremony.issue.signing.check_certificate", check)
    return seen


def test_a_post_signing_failure_calls_on_discard_with_the_signed_certificate(
    monkeypatch: pytest.MonkeyPatch, issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
) -> None:
    key, cert = issuing
    seen = _fail_after_signing(monkeypatch)
    ca_key = CountingKey(key)
    discarded: list[tuple[x509.Certificate, str]] = []
    with pytest.raises(IssuanceError) as err:
        sign_checked(_device_builder(cert), DEVICE, ca_key, cert, on_discard=lambda c, why: discarded.append((c, why)))
    reason = "post-issuance check failed: ERROR profile.device.planted: planted for the test"
    assert err.value.message == f"{reason}; certificate discarded"
    ((signed, why),) = discarded
    assert why == reason and ca_key.signatures == 1 and len(seen) == 2
    signed.verify_directly_issued_by(cert)  # the certificate the CA key really signed is what goes on record
    assert signed.serial_number == 2**125 + 3


def test_a_post_signing_failure_without_on_discard_still_refuses(
    monkeypatch: pytest.MonkeyPatch, issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
) -> None:
    _fail_after_signing(monkeypatch)
    with pytest.raises(IssuanceError, match="certificate discarded$"):
        sign_checked(_device_builder(issuing[1]), DEVICE, issuing[0], issuing[1])


def test_new_serial_is_16_positive_octets_and_skips_one_the_issuer_has_used() -> None:
    drawn: list[str] = []

    def exists(ca: str, serial: str) -> bool:
        assert ca == "issuing"
        drawn.append(serial)
        return len(drawn) < 3  # the first two draws are taken

    ws = SimpleNamespace(inventory=SimpleNamespace(serial_exists=exists))
    serial = new_serial(ws, "issuing")  # type: ignore[arg-type]
    assert len(drawn) == 3 and serial_hex(serial) == drawn[-1]
    octets = serial.to_bytes(16, "big")
    assert 0x01 <= octets[0] <= 0x7F


# --- the issuing CA from the workspace --------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    create_ca(workspace, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
    yield workspace
    workspace.close()


def test_issuer_of_gives_the_ca_s_record_certificate_and_key(ws: Workspace) -> None:
    record, cert, key = issuer_of(ws, "root")
    assert (record.name, record.key_label, record.key_store) == ("root", "ca-root", "software")
    assert key.public_key() == cert.public_key()


def test_issuer_of_refuses_a_ca_whose_key_is_in_another_kind_of_store(ws: Workspace) -> None:
    store = ws.config.key_store.model_copy(update={"kind": "pkcs11"})
    other = dataclasses.replace(ws, config=ws.config.model_copy(update={"key_store": store}))
    try:
        with pytest.raises(StateError) as err:
            issuer_of(other, "root")
    finally:
        other.close()
    assert err.value.message == "CA 'root' key is in a software store; this workspace uses pkcs11"
