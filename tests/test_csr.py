"""CSR intake: each bad CSR is refused with its own reason; good ones give key and requested identity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceremony.csr import check_identity, normalise_eui64, normalise_role, parse_csr
from ceremony.errors import InputError
from ceremony.profiles import get_profile
from tests.csr_factory import BAD_CSRS, good_device_csr, good_org_csr

REASONS = {
    "garbage": "not a DER-encoded PKCS#10 CSR",
    "empty": "CSR is empty",
    "truncated": "not a DER-encoded PKCS#10 CSR",
    "tampered-signature": "proof of possession failed",
    "pem-label-certificate": "PEM label is 'CERTIFICATE'",
    "rsa-1024": "CSR key is RSA-1024",
    "rsa-2048": "CSR key is RSA-2048",
    "p384": "CSR key is ec-p384",
    "secp256k1": "curve secp256k1",
    "ed25519": "CSR key is ed25519",
    "explicit-curve-parameters": "explicit curve parameters",
    "compressed-point": "not uncompressed",
    "sha1-signature": "SHA-1 is not allowed",
    "null-signature-parameters": "carries NULL parameters; RFC 5758 3.2 says absent",
    "over-1-mib": "the limit is 1048576",
}


@pytest.mark.parametrize("profile", ["ss1sp-device", "ss1sp-organisation"])
@pytest.mark.parametrize("quirk", sorted(BAD_CSRS))
def test_bad_csr_has_its_own_reason(quirk: str, profile: str) -> None:
    assert set(REASONS) == set(BAD_CSRS)
    with pytest.raises(InputError) as err:
        parse_csr(BAD_CSRS[quirk](), get_profile(profile), "x.csr")
    assert REASONS[quirk] in err.value.message
    assert "\n" not in err.value.message and len(err.value.message) < 200


def test_good_device_csr() -> None:
    pem, key = good_device_csr()
    request = parse_csr(pem, get_profile("ss1sp-device"), "d.csr")
    assert request.key_algorithm == "ec-p256" and request.signature_algorithm == "ecdsa-with-SHA256"
    assert request.public_key.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert request.requested.eui64 is None and request.requested.role is None


def test_device_csr_asking_for_an_eui64() -> None:
    pem, _ = good_device_csr("00DB123456789001")
    request = parse_csr(pem, get_profile("ss1sp-device"), "d.csr")
    assert request.requested.eui64 == "00DB123456789001"
    check_identity(request, eui64="00db123456789001", role=None, name=None)
    with pytest.raises(
        InputError, match="CSR asks for EUI-64 00DB123456789001 but the approved request is for 00DB123456789002"
    ):
        check_identity(request, eui64="00DB123456789002", role=None, name=None)


def test_organisation_csr_identity() -> None:
    pem, _ = good_org_csr("90B3D51F30000001", "2", "SUPPLIER")
    request = parse_csr(pem, get_profile("ss1sp-organisation"), "o.csr")
    assert request.requested.eui64 == "90B3D51F30000001"
    assert request.requested.role == "02" and request.requested.name == "SUPPLIER"
    with pytest.raises(InputError, match="CSR asks for role 02 but the approved request is for 03"):
        check_identity(request, eui64="90B3D51F30000001", role="03", name="SUPPLIER")


def test_normalisers() -> None:
    assert normalise_eui64("00-db-12-34-56-78-90-01") == "00DB123456789001"
    assert normalise_role("2") == "02"
    with pytest.raises(InputError, match="EUI-64 must be 16 hex digits"):
        normalise_eui64("00DB1234")
    with pytest.raises(InputError, match="role must be one or two hex digits"):
        normalise_role("123")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_input_error_or_a_request(data: bytes) -> None:
    try:
        parse_csr(data, get_profile("ss1sp-device"), "fuzz")
    except InputError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_single_byte_mutations_of_a_good_csr_never_crash(position: int, value: int) -> None:
    pem, _ = good_device_csr()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[position % len(der)] = value
    try:
        parse_csr(bytes(der), get_profile("ss1sp-device"), "fuzz")
    except InputError:
        pass
