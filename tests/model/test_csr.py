"""CSR intake: each bad CSR is refused with its own reason; good ones give key and requested identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from ceremony.errors import InputError
from ceremony.model.csr import (
    MAX_CSR_BYTES,
    CertificationRequest,
    check_identity,
    normalise_eui64,
    normalise_role,
    parse_csr,
    read_csr,
)
from ceremony.model.profiles import get_profile
from tests.support.csr_factory import BAD_CSRS, good_device_csr, good_org_csr

DER = serialization.Encoding.DER

#: A distinctive part of the one-line reason each bad CSR is refused with.
REASONS = {
    "garbage": "not a DER-encoded PKCS#10 CSR (truncated or malformed)",
    "empty": "CSR is empty",
    "truncated": "not a DER-encoded PKCS#10 CSR (truncated or malformed)",
    "der-trailing-garbage": "CSR is followed by 2 octets of trailing data",
    "pem-label-certificate": "PEM label is 'CERTIFICATE'; expected CERTIFICATE REQUEST",
    "pem-label-x509-crl": "PEM label is 'X509 CRL'; expected CERTIFICATE REQUEST",
    "pem-two-blocks": "expected one PEM block, found 2",
    "pem-text-before-block": "CSR has text before its PEM block",
    "pem-text-after-block": "CSR has text after its PEM block",
    "pem-bad-base64": "PEM body is not valid base64",
    "over-1-mib": "the limit is 1048576 (1 MiB)",
    "rsa-1024": "CSR key is RSA-1024; profile {profile} allows ec-p256",
    "rsa-2048": "CSR key is RSA-2048; profile {profile} allows ec-p256",
    "p384": "CSR key is ec-p384; profile {profile} allows ec-p256",
    "secp256k1": "CSR key is on curve secp256k1; profile {profile} allows ec-p256",
    "ed25519": "CSR key is Ed25519; profile {profile} allows ec-p256",
    "ed448": "CSR key is Ed448; profile {profile} allows ec-p256",
    "dsa": "CSR key is DSA; profile {profile} allows ec-p256",
    "explicit-curve-parameters": "CSR key uses explicit curve parameters",
    "implicit-ca-parameters": "CSR key uses implicitCA curve parameters",
    "compressed-point": "CSR EC point is compressed",
    "point-too-short": "CSR EC point is 64 octets; an uncompressed P-256 point is 65",
    "point-not-on-curve": "CSR public key is invalid",
    "tampered-signature": "CSR signature does not verify (proof of possession failed)",
    "sha1-signature": "CSR is signed with ecdsa-with-SHA1; SHA-1 is not allowed",
    "null-signature-parameters": "ecdsa-with-SHA256 carries NULL parameters; RFC 5758 3.2 says absent",
    "x500-unique-identifier-7-octets": "CSR x500UniqueIdentifier is not a 64-bit EUI-64",
    "hardware-module-name-7-octets": "CSR hardwareModuleName serial is 7 octets, not 8",
    "two-different-eui64s": "CSR names 2 different EUI-64s",
    "duplicate-san-extension": "CSR requests extension 2.5.29.17 more than once",
}


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(DER)


def _device(data: bytes) -> CertificationRequest:
    return parse_csr(data, get_profile("ss1sp-device"), "d.csr")


def test_every_bad_csr_has_a_reason() -> None:
    assert set(REASONS) == set(BAD_CSRS)


@pytest.mark.parametrize("profile", ["ss1sp-device", "ss1sp-organisation"])
@pytest.mark.parametrize("quirk", sorted(BAD_CSRS))
def test_bad_csr_has_its_own_reason(quirk: str, profile: str) -> None:
    with pytest.raises(InputError) as err:
        parse_csr(BAD_CSRS[quirk](), get_profile(profile), "x.csr")
    message = err.value.message
    assert message.startswith("x.csr: ")
    assert REASONS[quirk].format(profile=profile) in message
    assert "\n" not in message and len(message) < 200


def test_good_device_csr() -> None:
    pem, key = good_device_csr()
    request = _device(pem)
    assert request.key_algorithm == "ec-p256" and request.signature_algorithm == "ecdsa-with-SHA256"
    assert isinstance(request.public_key, ec.EllipticCurvePublicKey)
    assert request.public_key.public_numbers() == key.public_key().public_numbers()
    assert request.requested.eui64 is None and request.requested.role is None and request.requested.name is None
    assert request.der == _der(pem) and request.source == "d.csr"


def test_der_and_both_pem_labels_give_the_same_request() -> None:
    pem, _ = good_device_csr()
    der = _der(pem)
    legacy = pem.replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    crlf = pem.replace(b"\n", b"\r\n")
    assert {_device(data).sha256 for data in (pem, der, legacy, crlf)} == {_device(pem).sha256}


def test_device_csr_asking_for_an_eui64() -> None:
    pem, _ = good_device_csr("00DB123456789001")
    request = _device(pem)
    assert request.requested.eui64 == "00DB123456789001"
    check_identity(request, eui64="00db123456789001", role=None, name=None)
    check_identity(request, eui64="00-DB-12-34-56-78-90-01", role=None, name=None)
    with pytest.raises(
        InputError, match="CSR asks for EUI-64 00DB123456789001 but the approved request is for 00DB123456789002"
    ):
        check_identity(request, eui64="00DB123456789002", role=None, name=None)


def test_organisation_csr_identity() -> None:
    pem, _ = good_org_csr("90B3D51F30000001", "2", "SUPPLIER")
    request = parse_csr(pem, get_profile("ss1sp-organisation"), "o.csr")
    assert request.requested.eui64 == "90B3D51F30000001"
    assert request.requested.role == "02" and request.requested.name == "SUPPLIER"
    check_identity(request, eui64="90b3d51f30000001", role="2", name="SUPPLIER")
    with pytest.raises(InputError, match="CSR asks for role 02 but the approved request is for 03"):
        check_identity(request, eui64="90B3D51F30000001", role="03", name="SUPPLIER")
    with pytest.raises(InputError, match="CSR asks for name 'SUPPLIER' but the approved request is for 'Supplier'"):
        check_identity(request, eui64="90B3D51F30000001", role="02", name="Supplier")
    with pytest.raises(InputError, match="CSR asks for EUI-64 90B3D51F30000001 but the approved request is for none"):
        check_identity(request, eui64=None, role="02", name="SUPPLIER")


def test_a_csr_asking_for_nothing_agrees_with_any_approval() -> None:
    request = _device(good_device_csr()[0])
    check_identity(request, eui64="00DB123456789001", role="02", name="anything")
    check_identity(request, eui64=None, role=None, name=None)


def test_subject_and_san_naming_the_same_eui64_agree() -> None:
    pem, _ = good_org_csr("00DB123456789001", "02", san_eui64="00db123456789001")
    assert parse_csr(pem, get_profile("ss1sp-organisation"), "o.csr").requested.eui64 == "00DB123456789001"


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        (
            x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "SUPPLIER")]),
            "CSR subject OU 'SUPPLIER' is not a role code",
        ),
        (
            x509.Name(
                [
                    x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "02"),
                    x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "03"),
                ]
            ),
            "CSR subject has more than one OU",
        ),
    ],
)
def test_subject_identity_is_unambiguous(subject: x509.Name, reason: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    with pytest.raises(InputError, match=reason):
        parse_csr(pem.public_bytes(serialization.Encoding.PEM), get_profile("ss1sp-organisation"), "o.csr")


def test_profile_decides_key_and_signature_algorithms() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(p384, hashes.SHA384())
    pem = csr.public_bytes(serialization.Encoding.PEM)
    request = parse_csr(pem, get_profile("ss1spca-root"), "root.csr")
    assert (request.key_algorithm, request.signature_algorithm) == ("ec-p384", "ecdsa-with-SHA384")
    p256 = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(p256, hashes.SHA384())
    with pytest.raises(
        InputError, match="CSR is signed with ecdsa-with-SHA384; profile ss1sp-device allows ecdsa-with-SHA256"
    ):
        _device(csr.public_bytes(serialization.Encoding.PEM))


def test_read_csr(tmp_path: Path) -> None:
    pem, _ = good_device_csr()
    good = tmp_path / "good.csr"
    good.write_bytes(pem)
    assert read_csr(good) == pem
    with pytest.raises(InputError, match=r"missing\.csr: cannot read CSR \(No such file or directory\)"):
        read_csr(tmp_path / "missing.csr")
    with pytest.raises(InputError, match="not a regular file"):
        read_csr(tmp_path)


def test_read_csr_refuses_a_big_file_before_opening_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.csr"
    with big.open("wb") as fh:
        fh.truncate(MAX_CSR_BYTES + 1)  # sparse: the size is there without writing a MiB
    monkeypatch.setattr(Path, "open", lambda *_a, **_k: pytest.fail("opened a file over the limit"))
    with pytest.raises(InputError, match=r"big\.csr: CSR file is 1048577 bytes; the limit is 1048576"):
        read_csr(big)


def test_normalisers() -> None:
    assert normalise_eui64("00-db-12-34-56-78-90-01") == "00DB123456789001"
    assert normalise_eui64("00:DB:12:34 56:78:90:01") == "00DB123456789001"
    assert normalise_role("2") == "02" and normalise_role("7f") == "7F"
    with pytest.raises(InputError, match=r"EUI-64 must be 16 hex digits \(got '00DB1234'\)"):
        normalise_eui64("00DB1234")
    with pytest.raises(InputError, match=r"EUI-64 must be 16 hex digits \(got '00DB12345678900G'\)"):
        normalise_eui64("00DB12345678900G")
    with pytest.raises(InputError, match="role must be one or two hex digits"):
        normalise_role("123")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_input_error_or_a_request(data: bytes) -> None:
    try:
        _device(data)
    except InputError as exc:
        assert "\n" not in exc.message


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", "X"]))
def test_any_pem_body_gives_input_error_or_a_request(body: bytes, label: str) -> None:
    import base64

    pem = f"-----BEGIN {label}-----\n".encode() + base64.encodebytes(body) + f"-----END {label}-----\n".encode()
    try:
        _device(pem)
    except InputError as exc:
        assert "\n" not in exc.message


_GOOD_DER = _der(good_device_csr("00DB123456789001")[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GOOD_DER) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_byte_mutations_of_a_good_csr_never_crash(edits: list[tuple[int, int]]) -> None:
    der = bytearray(_GOOD_DER)
    for position, value in edits:
        der[position] = value
    try:
        request = _device(bytes(der))
    except InputError as exc:
        assert "\n" not in exc.message
    else:
        assert request.der == _GOOD_DER  # only an edit that changed nothing may pass


def test_a_signature_bit_string_with_unused_bits_is_refused() -> None:
    """Found by the mutation test: 1 unused bit in the signature BIT STRING is a second encoding of the same
    signature (cryptography verifies it), so a CSR's bytes would not be the ones its requester signed."""
    from asn1crypto import csr as asn1_csr

    signature = asn1_csr.CertificationRequest.load(_GOOD_DER)["signature"]
    unused_at = len(_GOOD_DER) - len(signature.contents)  # the signature is the last element
    der = bytearray(_GOOD_DER)
    assert der[unused_at] == 0
    der[unused_at] = 1
    with pytest.raises(InputError, match="declares 1 unused bits"):
        _device(bytes(der))
