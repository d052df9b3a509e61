"""Device TBS templates: a filled template is byte for byte the builder's TBS, and only device profiles qualify."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.der import gbcs_key_identifier
from ceremony.model.profiles import ResolvedProfile, get_profile
from ceremony.model.tbs import Identity, Issuer, Usage, build_tbs, key_identifier
from ceremony.model.template import (
    ECDSA_WITH_SHA256,
    P256_SPKI_PREFIX,
    SERIAL_OCTETS,
    TbsTemplate,
    assemble,
    batch_time,
    der_length,
    new_serial,
    utc_time,
)
from tests.support.shapes import assert_is_device_cert

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
DEVICE = get_profile("ss1sp-device")


@pytest.fixture(scope="module")
def issuing() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Issuer]:
    root_key, issuing_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = build_tbs(
        Identity(role="00", name="Root"), root_key.public_key(), get_profile("ss1spca-root"), None, 2**120 + 1, NOW
    ).sign(root_key, hashes.SHA256())
    root_issuer = Issuer(root.subject, key_identifier(root_key.public_key()), root.not_valid_after_utc)
    cert = build_tbs(
        Identity(role="07", name="Issuing"),
        issuing_key.public_key(),
        get_profile("ss1spca-issuing"),
        root_issuer,
        2**120 + 2,
        NOW,
    ).sign(root_key, hashes.SHA256())
    return issuing_key, cert, Issuer(cert.subject, key_identifier(issuing_key.public_key()), cert.not_valid_after_utc)


@pytest.fixture(scope="module")
def templates(issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Issuer]) -> dict[str, TbsTemplate]:
    return {usage: TbsTemplate.build(DEVICE, issuing[2], usage) for usage in ("ds", "ka")}


def _point() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@pytest.mark.parametrize("usage", ["ds", "ka"])
def test_a_filled_template_is_the_builder_s_tbs(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Issuer],
    templates: dict[str, TbsTemplate],
    usage: Usage,
) -> None:
    serial, point, eui64, now = new_serial(), _point(), bytes.fromhex("00DB123456789001"), batch_time(NOW)
    filled = templates[usage].prove(DEVICE, issuing[2], usage, serial, now, point, eui64)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    builder = build_tbs(
        Identity(eui64="00DB123456789001", usage=usage), public, DEVICE, issuing[2], int.from_bytes(serial, "big"), now
    )
    expected = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).tbs_certificate_bytes
    assert filled == expected
    tbs, ski = templates[usage].fill(serial, utc_time(now), point, eui64)
    assert (tbs, ski) == (expected, gbcs_key_identifier(point))


def test_the_offsets_locate_each_variable_field(templates: dict[str, TbsTemplate]) -> None:
    serial, point, eui64 = new_serial(), _point(), bytes(range(1, 9))
    when = utc_time(datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone.utc))
    template = templates["ka"]
    tbs, ski = template.fill(serial, when, point, eui64)
    assert len(tbs) == len(template.der)
    assert tbs[template.serial_at : template.serial_at + SERIAL_OCTETS] == serial
    assert tbs[template.not_before_at : template.not_before_at + 13] == b"310203040506Z"
    assert tbs[template.point_at - len(P256_SPKI_PREFIX) : template.point_at + 65] == P256_SPKI_PREFIX + point
    assert tbs[template.ski_at : template.ski_at + 8] == ski
    assert tbs[template.eui64_at : template.eui64_at + 8] == eui64
    assert template.not_after == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def test_an_assembled_certificate_is_a_device_certificate_that_lints_clean(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Issuer], templates: dict[str, TbsTemplate]
) -> None:
    issuing_key, issuing_cert, _ = issuing
    tbs, _ = templates["ds"].fill(new_serial(), utc_time(batch_time(NOW)), _point(), bytes.fromhex("00DB123456789002"))
    der = assemble(tbs, issuing_key.sign(tbs, ec.ECDSA(hashes.SHA256())))
    cert = x509.load_der_x509_certificate(der)
    assert cert.tbs_certificate_bytes == tbs
    cert.verify_directly_issued_by(issuing_cert)
    assert_is_device_cert(cert, issuing_cert, "00DB123456789002", "ds", DEVICE.hw_type_oid)  # type: ignore[arg-type]
    assert failing(check_certificate(der, DEVICE, issuer=issuing_cert)) == []
    assert cert.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"  # ecdsa-with-SHA256


def test_prove_refuses_when_the_template_and_the_builder_disagree(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Issuer], templates: dict[str, TbsTemplate]
) -> None:
    # The ds template filled for a ka certificate keeps the ds key usage: the builder's bytes differ.
    with pytest.raises(
        StateError, match="the ss1sp-device template and the certificate builder disagree; batch refused"
    ):
        templates["ds"].prove(DEVICE, issuing[2], "ka", new_serial(), batch_time(NOW), _point(), bytes(8))


def _with_rules(profile: ResolvedProfile, **changes: object) -> ResolvedProfile:
    return dataclasses.replace(profile, rules=profile.rules.model_copy(update=changes))


def test_only_device_profiles_make_templates(
    issuing: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Issuer],
) -> None:
    with pytest.raises(InputError) as err:
        TbsTemplate.build(get_profile("ss1sp-organisation"), issuing[2], "ds")
    assert err.value.message == (
        "profile ss1sp-organisation is not a device profile (empty subject, fixed notAfter); "
        "batch issuance builds device certificates"
    )
    several = _with_rules(DEVICE, key_algorithms=["ec-p256", "ec-p384"])
    with pytest.raises(
        InputError, match="batch issuance supports P-256 device keys; profile ss1sp-device allows others"
    ):
        TbsTemplate.build(several, issuing[2], "ds")


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, "00"), (0x7F, "7f"), (0x80, "8180"), (0xFF, "81ff"), (0x100, "820100"), (0x10000, "83010000")],
)
def test_der_length_uses_the_short_form_below_128_and_the_minimal_long_form_above(n: int, encoded: str) -> None:
    assert der_length(n).hex() == encoded


def test_utc_time_is_thirteen_octets_in_utc() -> None:
    assert utc_time(datetime(2026, 12, 1, 12, 30, 5, tzinfo=timezone(timedelta(hours=2)))) == b"261201103005Z"
    assert utc_time(datetime(2049, 12, 31, 23, 59, 59, tzinfo=timezone.utc)) == b"491231235959Z"


def test_assemble_wraps_tbs_algorithm_and_signature_in_one_sequence() -> None:
    tbs, signature = b"\x30\x03\x02\x01\x05", bytes(70)
    der = assemble(tbs, signature)
    body = tbs + ECDSA_WITH_SHA256 + b"\x03\x47\x00" + signature
    assert der == b"\x30" + der_length(len(body)) + body


def test_new_serial_is_sixteen_positive_octets_with_a_nonzero_first() -> None:
    serials = [new_serial() for _ in range(300)]
    assert all(len(s) == SERIAL_OCTETS and 0x01 <= s[0] <= 0x7F for s in serials)
    assert len(set(serials)) == 300


def test_batch_time_is_whole_seconds_in_utc_and_refuses_2050() -> None:
    when = batch_time(datetime(2026, 12, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))))
    assert when == datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc) and when.tzinfo == timezone.utc
    assert batch_time(datetime(2049, 12, 31, 23, 59, 59, tzinfo=timezone.utc)).year == 2049
    with pytest.raises(InputError, match="notBefore after 2049 needs GeneralizedTime"):
        batch_time(datetime(2050, 1, 1, tzinfo=timezone.utc))


def test_serials_drawn_many_at_once_follow_the_one_serial_rule() -> None:
    from ceremony.model.template import new_serials

    serials = new_serials(4096)
    assert len(serials) == len(set(serials)) == 4096
    assert all(len(s) == 16 and 0x01 <= s[0] <= 0x7F for s in serials)
    assert new_serials(0) == []


def test_a_variable_field_of_the_wrong_length_is_refused(templates: dict[str, TbsTemplate]) -> None:
    with pytest.raises(ValueError, match="wrong length"):
        templates["ds"].fill(new_serial()[:15], utc_time(batch_time(NOW)), _point(), bytes(8))
