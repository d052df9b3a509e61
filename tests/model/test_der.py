"""GBCS key identifiers and HardwareModuleName, checked against real DCC test certificates."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from ceremony.model.der import (
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
