"""Named shape assertions for the certificates the workbench issues."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from ceremony.keys.store import KeyAttributes
from ceremony.model.der import gbcs_key_identifier, parse_hardware_module_name, subject_public_key_bits

SENTINEL = "9999-12-31 23:59:59+00:00"


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_oid(oid)


def assert_gbcs_key_ids(cert: x509.Certificate, issuer: x509.Certificate | None) -> None:
    ski = _ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert not ski.critical
    assert ski.value.digest == gbcs_key_identifier(subject_public_key_bits(cert.public_key()))  # type: ignore[attr-defined,arg-type]
    assert len(ski.value.digest) == 8 and ski.value.digest[0] >> 4 == 0x4  # type: ignore[attr-defined]
    if issuer is None:
        assert ExtensionOID.AUTHORITY_KEY_IDENTIFIER not in [e.oid for e in cert.extensions]
    else:
        aki = _ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        assert not aki.critical
        assert aki.value.key_identifier == _ext(issuer, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value.digest  # type: ignore[attr-defined]
        assert aki.value.authority_cert_issuer is None and aki.value.authority_cert_serial_number is None  # type: ignore[attr-defined]


def _common(cert: x509.Certificate) -> None:
    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 2**127 and cert.serial_number >= 2**120
    policies = _ext(cert, ExtensionOID.CERTIFICATE_POLICIES)
    assert policies.critical and len(policies.value) == 1  # type: ignore[arg-type]
    assert _ext(cert, ExtensionOID.KEY_USAGE).critical
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def assert_is_root_ca(cert: x509.Certificate) -> None:
    _common(cert)
    assert cert.issuer == cert.subject
    bc = _ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1  # type: ignore[attr-defined]
    ku = _ext(cert, ExtensionOID.KEY_USAGE).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature  # type: ignore[attr-defined]
    assert_gbcs_key_ids(cert, None)


def assert_is_issuing_ca(cert: x509.Certificate, root: x509.Certificate) -> None:
    _common(cert)
    assert cert.issuer == root.subject
    bc = _ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0  # type: ignore[attr-defined]
    assert cert.not_valid_after_utc <= root.not_valid_after_utc
    assert_gbcs_key_ids(cert, root)


def _one_usage(cert: x509.Certificate, usage: str) -> None:
    ku = _ext(cert, ExtensionOID.KEY_USAGE).value
    assert (ku.digital_signature, ku.key_agreement) == (usage == "ds", usage == "ka")  # type: ignore[attr-defined]
    assert not (ku.key_cert_sign or ku.crl_sign or ku.key_encipherment)  # type: ignore[attr-defined]


def assert_is_device_cert(
    cert: x509.Certificate, issuer: x509.Certificate, eui64: str, usage: str, hw_type: str
) -> None:
    _common(cert)
    assert len(cert.subject) == 0
    assert str(cert.not_valid_after_utc) == SENTINEL
    san = _ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.critical
    (name,) = san.value  # type: ignore[misc]
    assert isinstance(name, x509.OtherName) and name.type_id.dotted_string == "1.3.6.1.5.5.7.8.4"
    assert parse_hardware_module_name(name.value) == (hw_type, bytes.fromhex(eui64))
    assert ExtensionOID.BASIC_CONSTRAINTS not in [e.oid for e in cert.extensions]
    _one_usage(cert, usage)
    assert_gbcs_key_ids(cert, issuer)


def assert_is_org_cert(cert: x509.Certificate, issuer: x509.Certificate, eui64: str, role: str, usage: str) -> None:
    _common(cert)
    ou = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    uid = cert.subject.get_attributes_for_oid(x509.NameOID.X500_UNIQUE_IDENTIFIER)
    assert [a.value for a in ou] == [role]
    assert [a.value for a in uid] == [b"\x00" + bytes.fromhex(eui64)]
    assert cert.not_valid_after_utc <= issuer.not_valid_after_utc
    _one_usage(cert, usage)
    assert_gbcs_key_ids(cert, issuer)


def assert_never_leaves_the_token(attrs: KeyAttributes) -> None:
    """PKCS#11 attributes of a CA key generated on the token with no backup allowed."""
    assert (attrs.sensitive, attrs.extractable, attrs.local, attrs.never_extractable, attrs.always_sensitive) == (
        True,
        False,
        True,
        True,
        True,
    )
