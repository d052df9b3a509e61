"""GBCS key identifiers and HardwareModuleName, checked against real DCC test certificates."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ceremony.model.der import (
    certificate_spki,
    gbcs_key_identifier,
    hardware_module_name,
    parse_hardware_module_name,
    subject_public_key_bits,
)


def test_key_identifier_matches_real_device_certificates(smki_vectors: Path) -> None:
    files = sorted((smki_vectors / "device").glob("*.pem"))[:20]
    assert files
    for path in files:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert gbcs_key_identifier(subject_public_key_bits(cert.public_key())) == ski  # type: ignore[arg-type]


def test_hardware_module_name_matches_real_device_certificates(smki_vectors: Path) -> None:
    path = smki_vectors / "device" / "00db123456789001-ds.pem"
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    (name,) = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert isinstance(name, x509.OtherName)
    hw_type, serial = parse_hardware_module_name(name.value)
    assert (hw_type, serial.hex()) == ("1.2.826.0.1.8641679.1.2.2.1", "00db123456789001")
    assert hardware_module_name(hw_type, serial) == name.value


# --- certificate_spki ------------------------------------------------------------------------
def _self_signed(key: Any, *, algorithm: Any = None) -> bytes:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "spki")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2026, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=timezone.utc))
    )
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def _cryptography_spki(der: bytes) -> bytes:
    public = x509.load_der_x509_certificate(der).public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        pytest.param(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256(), id="ec-p256"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384(), id="ec-p384"),
        pytest.param(rsa.generate_private_key(65537, 2048), hashes.SHA256(), id="rsa-2048"),
        pytest.param(rsa.generate_private_key(65537, 4096), hashes.SHA256(), id="rsa-4096 (3-octet lengths)"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), None, id="ed25519"),
    ],
)
def test_certificate_spki_is_the_subject_public_key_info_cryptography_encodes(key: Any, algorithm: Any) -> None:
    der = _self_signed(key, algorithm=algorithm)
    assert certificate_spki(der) == _cryptography_spki(der)


def test_certificate_spki_matches_real_dcc_certificates(smki_vectors: Path) -> None:
    files = sorted(smki_vectors.glob("*/*.pem"))
    assert len(files) > 20
    loaded = 0
    for path in files:
        _, _, der = pem.unarmor(path.read_bytes())
        spki = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"].dump()
        assert certificate_spki(der) == spki, path.name
        try:
            assert certificate_spki(der) == _cryptography_spki(der), path.name
            loaded += 1
        except ValueError:  # a nonconformant vector cryptography refuses to load (its key is still found)
            assert "nonconformant" in str(path)
    assert loaded > 20


def test_certificate_spki_of_a_v1_certificate_without_its_version_field() -> None:
    cert = asn1_x509.Certificate.load(_self_signed(ec.generate_private_key(ec.SECP256R1()), algorithm=hashes.SHA256()))
    tbs = cert["tbs_certificate"]
    spki = tbs["subject_public_key_info"].dump()
    del tbs["extensions"]
    tbs["version"] = "v1"  # the DEFAULT: left out of the encoding
    der = cert.dump(force=True)
    assert asn1_x509.Certificate.load(der)["tbs_certificate"].contents[0] == 0x02  # the serialNumber comes first
    assert certificate_spki(der) == spki


@pytest.mark.parametrize(
    "der",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x30", id="one octet"),
        pytest.param(b"\x04\x03abc", id="not a SEQUENCE"),
        pytest.param(b"\x30\x85\x00\x00\x00\x00\x01\x00", id="five length octets"),
        pytest.param(b"\x30\x05\x30\x03\x02\x01\x01", id="tbsCertificate ends before its key"),
        pytest.param(b"\x30\x06\x30\x08\x02\x01\x01", id="element past its container"),
        pytest.param(b"\x30\x05\x30\x03\x30\x01\x00", id="no serialNumber"),
    ],
)
def test_certificate_spki_refuses_what_is_not_a_certificate(der: bytes) -> None:
    with pytest.raises(ValueError):
        certificate_spki(der)


def test_certificate_spki_refuses_a_csr_and_a_truncated_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    with pytest.raises(ValueError):
        certificate_spki(csr.public_bytes(serialization.Encoding.DER))
    der = _self_signed(key, algorithm=hashes.SHA256())
    with pytest.raises(ValueError):
        certificate_spki(der[:200])
