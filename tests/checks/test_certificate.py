"""Profile checks: real DCC certificates pass their profiles, and each mutant class has its own code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from asn1crypto import core, pem
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.checks import certificate
from ceremony.checks.certificate import check_certificate
from ceremony.checks.findings import Severity, failing
from ceremony.errors import InputError
from ceremony.profiles import get_profile
from ceremony.tbs import Identity, Issuer, build_tbs, key_identifier
from tests.checks import mutants as m

DER = serialization.Encoding.DER
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)


def _real(smki: Path, name: str) -> bytes:
    return bytes(pem.unarmor((smki / name).read_bytes())[2])


@pytest.fixture(scope="module")
def own() -> dict[str, bytes]:
    """The workbench's own device and organisation certificates (pure builder, software keys)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    root = build_tbs(
        Identity(role="00", name="R"), ca_key.public_key(), get_profile("ss1spca-issuing"), None, 2**125, NOW
    ).sign(ca_key, hashes.SHA256())
    issuer = Issuer(root.subject, key_identifier(ca_key.public_key()), root.not_valid_after_utc)
    out = {}
    for profile, identity in (
        ("ss1sp-device", Identity(eui64="00DB123456789001", usage="ds")),
        ("ss1sp-organisation", Identity(eui64="90B3D51F30000001", usage="ka", role="02")),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        out[profile] = (
            build_tbs(identity, key.public_key(), get_profile(profile), issuer, 2**125 + 1, NOW)
            .sign(ca_key, hashes.SHA256())
            .public_bytes(DER)
        )
    return out


def _codes(der: bytes, profile: str) -> set[str]:
    return {f.code for f in check_certificate(der, get_profile(profile), now=NOW) if f.severity >= Severity.ERROR}


# (mutation, expected code) per mutant class; each applied to a real and to an own certificate.
DEVICE_MUTANTS: dict[str, tuple[Callable[[], m.Mutation], str]] = {
    "key-usage-not-critical": (lambda: m.flip_critical("key_usage"), "profile.key_usage.not_critical"),
    "san-not-critical": (lambda: m.flip_critical("subject_alt_name"), "profile.san.not_critical"),
    "policies-not-critical": (lambda: m.flip_critical("certificate_policies"), "profile.policies.not_critical"),
    "two-key-usage-bits": (lambda: m.two_key_usage_bits, "profile.key_usage.bit_count"),
    "p384-key": (lambda: m.replace_key(ec.generate_private_key(ec.SECP384R1())), "profile.key.curve"),
    "rsa-key": (lambda: m.replace_key(rsa.generate_private_key(65537, 2048)), "profile.key.algorithm"),
    "ski-20-octets": (lambda: m.ski_of_length(20), "profile.ski.length"),
    "ski-not-method-2": (lambda: m.ski_not_method2, "profile.ski.not_method2"),
    "subject-not-empty": (lambda: m.subject([("2.5.4.3", core.UTF8String("meter"))]), "profile.subject.not_empty"),
    "san-missing": (lambda: m.drop_extension("subject_alt_name"), "profile.san.missing"),
    "eui-7-octets": (lambda: m.device_san(b"\x00" * 7, "1.2.826.0.1.8641679.1.2.2.1"), "profile.san.eui64_length"),
    "not-after-not-sentinel": (lambda: m.not_after(m.EARLY), "profile.validity.not_after"),
    "ca-true": (lambda: m.ca_true, "profile.basic_constraints.ca_on_end_entity"),
}
ORG_MUTANTS: dict[str, tuple[Callable[[], m.Mutation], str]] = {
    "key-usage-not-critical": (lambda: m.flip_critical("key_usage"), "profile.key_usage.not_critical"),
    "two-key-usage-bits": (lambda: m.two_key_usage_bits, "profile.key_usage.bit_count"),
    "unknown-role-code": (
        lambda: m.subject([("2.5.4.11", core.UTF8String("42")), ("2.5.4.45", m.unique_identifier(b"\x90" * 8))]),
        "profile.subject.role_unknown",
    ),
    "eui-7-octets": (
        lambda: m.subject([("2.5.4.11", core.UTF8String("02")), ("2.5.4.45", m.unique_identifier(b"\x90" * 7))]),
        "profile.subject.eui64_length",
    ),
    "ca-true": (lambda: m.ca_true, "profile.basic_constraints.ca_on_end_entity"),
    "p384-key": (lambda: m.replace_key(ec.generate_private_key(ec.SECP384R1())), "profile.key.curve"),
}

_DEVICE_PROFILES = {"smki-device": "device/00db123456789001-ds.pem", "ss1sp-device": None}
_ORG_PROFILES = {"smki-organisation": "organisation/dccboxed-Z1-supplier-ka.pem", "ss1sp-organisation": None}


def _base(profile: str, real_path: str | None, smki: Path | None, own: dict[str, bytes]) -> bytes:
    if real_path is None:
        return own[profile]
    if smki is None:
        pytest.skip("real vectors absent")
    return _real(smki, real_path)


@pytest.fixture
def smki(request: pytest.FixtureRequest) -> Path | None:
    from tests.conftest import SHARED_VECTORS

    return SHARED_VECTORS if SHARED_VECTORS.is_dir() else None


# Every (profile, mutant class) pair: both real-certificate profiles and both of the workbench's own.
CASES = [
    (profile, real, mutants, name)
    for profiles, mutants in ((_DEVICE_PROFILES, DEVICE_MUTANTS), (_ORG_PROFILES, ORG_MUTANTS))
    for profile, real in sorted(profiles.items())
    for name in sorted(mutants)
]


@pytest.mark.parametrize("profile, real, mutants, mutant", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_mutant_is_flagged_with_its_code(
    profile: str,
    real: str | None,
    mutants: dict[str, tuple[Callable[[], m.Mutation], str]],
    mutant: str,
    smki: Path | None,
    own: dict[str, bytes],
) -> None:
    base = _base(profile, real, smki, own)
    assert _codes(m.mutate(base, lambda tbs: None), profile) == set()
    make, code = mutants[mutant]
    assert code in _codes(m.mutate(base, make()), profile)


def test_mutant_codes_are_distinct() -> None:
    codes = [code for _, code in DEVICE_MUTANTS.values()]
    assert len(codes) == len(set(codes))


def test_real_vectors_pass_their_profiles(smki_vectors: Path) -> None:
    counts = {"device": 0, "organisation": 0}
    warnings: list[str] = []
    for folder, profile in (("device", "smki-device"), ("organisation", "smki-organisation")):
        for path in sorted((smki_vectors / folder).glob("*.pem")):
            findings = check_certificate(
                _real(smki_vectors, f"{folder}/{path.name}"), get_profile(profile), subject=path.name
            )
            assert failing(findings) == [], [str(f) for f in failing(findings)]
            warnings += [f.code for f in findings if f.severity == Severity.WARNING]
            counts[folder] += 1
    assert counts == {"device": 400, "organisation": 33}
    # PROVENANCE.md: six organisation certificates carry no AKI (a warning, not an error).
    assert warnings == ["profile.aki.missing"] * 6


def test_nonconformant_vectors_name_the_null_parameters(smki_vectors: Path) -> None:
    for path in sorted((smki_vectors / "organisation-nonconformant").glob("*.pem")):
        findings = failing(
            check_certificate(
                _real(smki_vectors, f"organisation-nonconformant/{path.name}"), get_profile("smki-organisation")
            )
        )
        assert [f.code for f in findings] == ["profile.signature.params_not_absent"]
        assert "NULL parameters" in findings[0].message


def test_signature_and_aki_are_checked_against_the_issuer(own: dict[str, bytes]) -> None:
    from cryptography import x509

    other_key = ec.generate_private_key(ec.SECP256R1())
    stranger = build_tbs(
        Identity(role="07", name="X"), other_key.public_key(), get_profile("ss1spca-issuing"), None, 2**125, NOW
    ).sign(other_key, hashes.SHA256())
    codes = {f.code for f in check_certificate(own["ss1sp-device"], get_profile("ss1sp-device"), issuer=stranger)}
    assert {"profile.signature.invalid", "profile.aki.mismatch", "profile.issuer.name_mismatch"} <= codes
    assert isinstance(stranger, x509.Certificate)


def test_a_crashing_check_becomes_a_fatal_finding(own: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(certificate, "CHECKS", (explode, *certificate.CHECKS[1:]))
    findings = check_certificate(own["ss1sp-device"], get_profile("ss1sp-device"))
    fatal = [f for f in findings if f.severity == Severity.FATAL]
    assert [f.code for f in fatal] == ["profile.check_crashed"] and "explode" in fatal[0].message


def test_bytes_that_are_no_certificate_are_input_errors() -> None:
    with pytest.raises(InputError, match="not a DER X.509 certificate"):
        check_certificate(b"\x30\x03\x02\x01\x01", get_profile("ss1sp-device"))


def test_expiry_is_only_a_notice(smki_vectors: Path) -> None:
    der = _real(smki_vectors, "organisation/dccboxed-Z1-supplier-ka.pem")
    later = check_certificate(der, get_profile("smki-organisation"), now=datetime(2200, 1, 1, tzinfo=timezone.utc))
    assert [f.severity for f in later if f.code == "profile.validity.expired"] == [Severity.NOTICE]
    assert failing(later) == []
