"""The pure TBS builder: profile shapes, GBCS key identifiers, encodings, and no hidden inputs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, Issuer, build_tbs, key_identifier
from tests.support.shapes import (
    assert_is_device_cert,
    assert_is_issuing_ca,
    assert_is_org_cert,
    assert_is_root_ca,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
SERIAL = 0x1122334455667788_99AABBCCDDEEFF00


@pytest.fixture(scope="module")
def chain() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate]:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = build_tbs(
        Identity(role="00", name="Root"), root_key.public_key(), get_profile("ss1spca-root"), None, SERIAL, NOW
    ).sign(root_key, hashes.SHA256())
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuer = Issuer(root.subject, key_identifier(root_key.public_key()), root.not_valid_after_utc)
    issuing = build_tbs(
        Identity(role="07", name="Issuing"),
        issuing_key.public_key(),
        get_profile("ss1spca-issuing"),
        issuer,
        SERIAL + 1,
        NOW,
    ).sign(root_key, hashes.SHA256())
    return root_key, root, issuing_key, issuing


def _issuer(cert: x509.Certificate) -> Issuer:
    return Issuer(cert.subject, key_identifier(cert.public_key()), cert.not_valid_after_utc)  # type: ignore[arg-type]


def test_ca_shapes(chain) -> None:  # type: ignore[no-untyped-def]
    _, root, _, issuing = chain
    assert_is_root_ca(root)
    assert_is_issuing_ca(issuing, root)
    assert root.not_valid_before_utc == NOW


def test_device_shape_and_sentinel_encoding(chain) -> None:  # type: ignore[no-untyped-def]
    _, _, issuing_key, issuing = chain
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_tbs(
        Identity(eui64="00DB123456789001", usage="ka"),
        key.public_key(),
        get_profile("ss1sp-device"),
        _issuer(issuing),
        SERIAL + 2,
        NOW,
    ).sign(issuing_key, hashes.SHA256())
    assert_is_device_cert(cert, issuing, "00DB123456789001", "ka", "1.3.6.1.4.1.32473.2.1")
    validity = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))["tbs_certificate"]["validity"]
    # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime for 9999 (GBCS 12.2 sentinel).
    assert validity["not_before"].name == "utc_time" and validity["not_after"].name == "general_time"


def test_organisation_subject_has_a_bit_string_eui(chain) -> None:  # type: ignore[no-untyped-def]
    _, _, issuing_key, issuing = chain
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_tbs(
        Identity(eui64="90B3D51F30000001", usage="ds", role="02", name="SUPPLIER"),
        key.public_key(),
        get_profile("ss1sp-organisation"),
        _issuer(issuing),
        SERIAL + 3,
        NOW,
    ).sign(issuing_key, hashes.SHA256())
    assert_is_org_cert(cert, issuing, "90B3D51F30000001", "02", "ds")
    tbs = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))["tbs_certificate"]
    rdns = tbs["subject"].chosen
    types = [rdn[0]["type"].dotted for rdn in rdns]
    assert types == ["2.5.4.3", "2.5.4.11", "2.5.4.45"]
    uid = rdns[2][0]["value"]
    # The attribute value is a BIT STRING (tag 3) of 64 bits with no unused bits.
    raw = uid.dump()
    assert raw[:1] == b"\x03" and raw[2:] == b"\x00" + bytes.fromhex("90B3D51F30000001")


def test_same_inputs_same_tbs(chain) -> None:  # type: ignore[no-untyped-def]
    _, _, issuing_key, issuing = chain
    key = ec.generate_private_key(ec.SECP256R1())
    make = lambda: build_tbs(
        Identity(eui64="00DB123456789001", usage="ds"),
        key.public_key(),  # noqa: E731
        get_profile("ss1sp-device"),
        _issuer(issuing),
        SERIAL,
        NOW,
    )
    assert (
        make().sign(issuing_key, hashes.SHA256()).tbs_certificate_bytes
        == make().sign(issuing_key, hashes.SHA256()).tbs_certificate_bytes
    )


def test_validity_beyond_issuer_is_refused(chain) -> None:  # type: ignore[no-untyped-def]
    _, root, _, _ = chain
    key = ec.generate_private_key(ec.SECP256R1())
    late = datetime(2045, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(InputError, match="after the issuer's notAfter"):
        build_tbs(
            Identity(role="07", name="x"), key.public_key(), get_profile("ss1spca-issuing"), _issuer(root), SERIAL, late
        )


def test_validity_above_the_profile_cap_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InputError, match="exceeds profile ss1spca-root's maximum of 9131"):
        build_tbs(
            Identity(role="00", name="r"), key.public_key(), get_profile("ss1spca-root"), None, SERIAL, NOW, days=9132
        )
