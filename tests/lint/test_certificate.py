"""Profile checks: real DCC certificates pass their profiles, and each mutant class has its own code."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from asn1crypto import core
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import InputError
from ceremony.lint import certificate
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import Finding, Severity, failing
from ceremony.model.profiles import ResolvedProfile, get_profile
from tests.lint.conftest import Chain, read_vector
from tests.support import mutants as m

_RSA = rsa.generate_private_key(65537, 2048)  # one slow key for every RSA mutant
_STRANGER = "1.3.6.1.4.1.32473.1.9.9"


def _errors(der: bytes, profile: str | ResolvedProfile, **kwargs: object) -> set[str]:
    resolved = get_profile(profile) if isinstance(profile, str) else profile
    return {f.code for f in failing(check_certificate(der, resolved, now=m.NOW, **kwargs))}  # type: ignore[arg-type]


# --- the mutant table ---------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    """One defect: the mutations that make it (from the base certificate) and the code it must raise."""

    code: str
    make: Callable[[bytes], list[m.Mutation]]
    kinds: tuple[str, ...] = ("device", "organisation")
    #: ERROR codes the same defect may also raise on some profiles (never anything else).
    also: frozenset[str] = frozenset()
    signer: Callable[[], m.PrivateKey] | None = None
    outer: bytes | None = None
    #: Profiles whose rule says ``on_violation: warning`` for this defect.
    warning_on: frozenset[str] = frozenset()


def _one(mutation: m.Mutation) -> Callable[[bytes], list[m.Mutation]]:
    return lambda base: [mutation]


DEVICE, ORG = ("device",), ("organisation",)
MUTANTS: dict[str, Mutant] = {
    # Criticality (GBCS 12: KU, SAN, certificatePolicies critical; SKI, AKI non-critical).
    "key-usage-not-critical": Mutant("profile.key_usage.not_critical", _one(m.flip_critical("key_usage"))),
    "policies-not-critical": Mutant("profile.policies.not_critical", _one(m.flip_critical("certificate_policies"))),
    "ski-critical": Mutant("profile.ski.critical", _one(m.flip_critical("key_identifier"))),
    "aki-critical": Mutant(
        "profile.aki.critical",
        _one(m.flip_critical("authority_key_identifier")),
        # smki-test grades the whole AKI rule (presence and criticality) as a warning.
        warning_on=frozenset({"smki-organisation"}),
    ),
    "san-not-critical": Mutant("profile.san.not_critical", _one(m.flip_critical("subject_alt_name")), DEVICE),
    # Presence.
    "key-usage-missing": Mutant("profile.key_usage.missing", _one(m.drop_extension("key_usage"))),
    "ski-missing": Mutant("profile.ski.missing", _one(m.drop_extension("key_identifier"))),
    "policies-missing": Mutant("profile.policies.missing", _one(m.drop_extension("certificate_policies"))),
    "san-missing": Mutant("profile.san.missing", _one(m.drop_extension("subject_alt_name")), DEVICE),
    "san-on-organisation": Mutant("profile.san.present", _one(m.device_san(b"\x90" * 8, m.TEST_HW_TYPE)), ORG),
    "eku-present": Mutant("profile.eku.present", _one(m.ekus("client_auth"))),
    "unknown-extension": Mutant("profile.extension.unexpected", _one(m.unknown_extension)),
    "duplicate-extension": Mutant("profile.extension.duplicate", _one(m.duplicate_extension("certificate_policies"))),
    # Key usage: exactly one of digitalSignature / keyAgreement.
    "two-key-usage-bits": Mutant("profile.key_usage.bit_count", _one(m.two_key_usage_bits)),
    "key-usage-key-cert-sign": Mutant("profile.key_usage.bits", _one(m.key_usage("key_cert_sign"))),
    # Key: P-256, named curve, uncompressed point on the curve.
    "p384-key": Mutant("profile.key.curve", _one(m.replace_key(ec.generate_private_key(ec.SECP384R1())))),
    "rsa-key": Mutant("profile.key.algorithm", _one(m.replace_key(_RSA))),
    "compressed-point": Mutant("profile.key.point_compressed", _one(m.ec_point(m.compressed))),
    "point-off-curve": Mutant("profile.key.point_invalid", _one(m.ec_point(m.off_curve))),
    "implicit-ca-curve": Mutant("profile.key.explicit_parameters", _one(m.implicit_ca)),
    # Key identifiers: 8-octet method 2; AKI [0] keyIdentifier only.
    "ski-20-octets": Mutant("profile.ski.length", _one(m.ski_of_length(20))),
    "ski-not-method-2": Mutant("profile.ski.not_method2", _one(m.ski_not_method2)),
    "aki-with-issuer-and-serial": Mutant("profile.aki.form", _one(m.aki_with_issuer_and_serial)),
    "aki-20-octets": Mutant("profile.aki.length", _one(m.aki({"key_identifier": b"\x41" * 20}))),
    # Basic constraints, version, serial.
    "ca-true": Mutant(
        "profile.basic_constraints.ca_on_end_entity",
        _one(m.ca_true),
        also=frozenset({"profile.basic_constraints.present"}),  # ss1sp-device: basicConstraints absent
    ),
    "version-1": Mutant("profile.version", _one(m.version("v1"))),
    "serial-8-octets": Mutant("profile.serial.length", _one(m.serial(2**62))),
    "serial-negative": Mutant("profile.serial.not_positive", _one(m.serial(-(2**126)))),
    # Policies: one, the environment's.
    "wrong-policy": Mutant("profile.policies.oid", _one(m.policies(_STRANGER))),
    "two-policies": Mutant("profile.policies.count", _one(m.add_policy(_STRANGER))),
    # Signature AlgorithmIdentifier: ecdsa-with-SHA256, parameters absent (RFC 5758 3.2).
    "null-signature-parameters": Mutant("profile.signature.params_not_absent", _one(m.null_signature_parameters)),
    "rsa-signature": Mutant(
        "profile.signature.algorithm", _one(m.signature_algorithm(m.SHA256_RSA)), signer=lambda: _RSA
    ),
    "signature-mismatch": Mutant(
        "profile.signature.mismatch",
        _one(m.no_change),
        outer=m.ECDSA_SHA384,
        also=frozenset({"profile.signature.algorithm"}),  # the outer SHA-384 is not allowed either
    ),
    # Validity.
    "not-before-generalized-time": Mutant(
        "profile.validity.time_encoding",
        _one(m.time_type("not_before", "general_time")),
    ),
    "not-after-before-not-before": Mutant(
        "profile.validity.negative",
        _one(m.validity(datetime(2016, 4, 6, tzinfo=timezone.utc), datetime(2016, 4, 5, tzinfo=timezone.utc))),
        also=frozenset({"profile.validity.not_after"}),  # device: not the sentinel either
    ),
    "not-after-not-sentinel": Mutant("profile.validity.not_after", _one(m.not_after(m.EARLY)), DEVICE),
    "validity-too-long": Mutant("profile.validity.too_long", _one(m.lasting(40_000)), ORG),
    # Device identity: empty subject, one hardwareModuleName with the profile's hwType and 8 octets.
    "subject-not-empty": Mutant(
        "profile.subject.not_empty", _one(m.subject([("2.5.4.3", core.UTF8String("meter"))])), DEVICE
    ),
    "hw-serial-7-octets": Mutant(
        "profile.san.eui64_length", lambda base: [m.device_san_like(base, eui=b"\x00" * 7)], DEVICE
    ),
    "wrong-hw-type": Mutant("profile.san.hw_type", lambda base: [m.device_san_like(base, hw_type=_STRANGER)], DEVICE),
    "san-two-names": Mutant(
        "profile.san.form", lambda base: [m.device_san_like(base, extra_dns="meter.example")], DEVICE
    ),
    # Organisation identity: OU role code, x500UniqueIdentifier of 64 bits, attributes as listed.
    "unknown-role-code": Mutant("profile.subject.role_unknown", _one(m.org_subject(role="42")), ORG),
    "uid-7-octets": Mutant("profile.subject.eui64_length", _one(m.org_subject(eui=b"\x90" * 7)), ORG),
    "ou-missing": Mutant(
        "profile.subject.attribute_missing",
        _one(m.subject([(m.X500_UNIQUE_IDENTIFIER, m.unique_identifier(b"\x90" * 8))])),
        ORG,
    ),
    "ou-twice": Mutant(
        "profile.subject.attribute_repeated",
        _one(
            m.subject(
                [
                    ("2.5.4.11", core.UTF8String("02")),
                    ("2.5.4.11", core.UTF8String("02")),
                    (m.X500_UNIQUE_IDENTIFIER, m.unique_identifier(b"\x90" * 8)),
                ]
            )
        ),
        ORG,
    ),
    "uid-before-ou": Mutant(
        "profile.subject.order",
        _one(
            m.subject(
                [(m.X500_UNIQUE_IDENTIFIER, m.unique_identifier(b"\x90" * 8)), ("2.5.4.11", core.UTF8String("02"))]
            )
        ),
        ORG,
    ),
    "ou-ia5-string": Mutant(
        "profile.subject.encoding",
        _one(
            m.subject(
                [("2.5.4.11", core.IA5String("02")), (m.X500_UNIQUE_IDENTIFIER, m.unique_identifier(b"\x90" * 8))]
            )
        ),
        ORG,
    ),
    "organisation-attribute": Mutant(
        "profile.subject.attribute_unexpected",
        _one(
            m.subject(
                [
                    ("2.5.4.10", core.UTF8String("DCC")),
                    ("2.5.4.11", core.UTF8String("02")),
                    (m.X500_UNIQUE_IDENTIFIER, m.unique_identifier(b"\x90" * 8)),
                ]
            )
        ),
        ORG,
    ),
    "multi-valued-rdn": Mutant(
        "profile.subject.multi_valued_rdn",
        _one(
            m.subject(
                [("2.5.4.11", core.UTF8String("02")), (m.X500_UNIQUE_IDENTIFIER, m.unique_identifier(b"\x90" * 8))],
                multi_valued=True,
            )
        ),
        ORG,
    ),
}

#: Each kind's profiles and base certificates: a real DCC one, the workbench's own, an independent build.
BASES = {
    "device": [("smki-device", "real"), ("ss1sp-device", "workbench"), ("ss1sp-device", "cryptography")],
    "organisation": [
        ("smki-organisation", "real"),
        ("ss1sp-organisation", "workbench"),
        ("ss1sp-organisation", "cryptography"),
    ],
}
_REAL = {"device": "device/00db123456789001-ds.pem", "organisation": "organisation/dccboxed-Z1-supplier-ka.pem"}
CASES = [
    pytest.param(kind, profile, origin, name, id=f"{profile}-{origin}-{name}")
    for name, mutant in sorted(MUTANTS.items())
    for kind in mutant.kinds
    for profile, origin in BASES[kind]
]


@pytest.fixture
def base(request: pytest.FixtureRequest, chain: Chain, workbench: dict[str, bytes]) -> Callable[[str, str, str], bytes]:
    def get(kind: str, profile: str, origin: str) -> bytes:
        if origin == "real":
            request.getfixturevalue("smki")
            return read_vector(_REAL[kind])
        if origin == "workbench":
            return workbench[profile]
        return chain.device.der if kind == "device" else chain.organisation.der

    return get


@pytest.mark.parametrize("kind, profile, origin, name", CASES)
def test_mutant_is_flagged_with_its_own_code(
    kind: str, profile: str, origin: str, name: str, base: Callable[[str, str, str], bytes]
) -> None:
    der = base(kind, profile, origin)
    assert _errors(m.mutate(der), profile) == set(), "the re-signed base must pass"
    mutant = MUTANTS[name]
    mutated = m.mutate(der, *mutant.make(der), signer=mutant.signer() if mutant.signer else None, outer=mutant.outer)
    findings = check_certificate(mutated, get_profile(profile), now=m.NOW)
    expected = Severity.WARNING if profile in mutant.warning_on else Severity.ERROR
    assert (mutant.code, expected) in {(f.code, f.severity) for f in findings}
    errors = {f.code for f in failing(findings)}
    assert errors - {mutant.code} <= mutant.also, f"{name} raised more than its own defect: {errors}"


def test_each_mutant_class_has_its_own_code() -> None:
    for kind in BASES:
        codes = [mt.code for mt in MUTANTS.values() if kind in mt.kinds]
        assert len(codes) == len(set(codes)), kind


# --- the real DCC test certificates -------------------------------------------------------
# PROVENANCE.md: the six organisation certificates without an authorityKeyIdentifier.
NO_AKI = ("dccboxed-xml-sign-", "dccboxed-dsp-xml-sign-", "gbcs-parser-90b3d51f30010008-")


def _findings_by_file(smki: Path, folder: str, profile: str) -> dict[str, list[Finding]]:
    resolved = get_profile(profile)
    return {
        path.name: check_certificate(read_vector(f"{folder}/{path.name}"), resolved, subject=path.name, now=m.NOW)
        for path in sorted((smki / folder).glob("*.pem"))
    }


def test_all_400_device_vectors_pass_smki_device(smki: Path) -> None:
    results = _findings_by_file(smki, "device", "smki-device")
    assert len(results) == 400
    assert {name: [str(f) for f in fs] for name, fs in results.items() if fs} == {}


def test_all_33_organisation_vectors_pass_smki_organisation(smki: Path) -> None:
    results = _findings_by_file(smki, "organisation", "smki-organisation")
    assert len(results) == 33
    assert [str(f) for fs in results.values() for f in failing(fs)] == []
    # The known deviations stay visible at their grade: six missing AKIs are WARNINGs ...
    missing_aki = {n for n, fs in results.items() for f in fs if f.code == "profile.aki.missing"}
    assert missing_aki == {n for n in results if n.startswith(NO_AKI)} and len(missing_aki) == 6
    assert all(f.severity == Severity.WARNING for fs in results.values() for f in fs if f.code == "profile.aki.missing")
    assert {f.code for fs in results.values() for f in fs if f.severity == Severity.WARNING} == {"profile.aki.missing"}
    # ... expiry is a NOTICE only (25 of 33 expired by 2026-11-24) ...
    expired = [f for fs in results.values() for f in fs if f.code == "profile.expired"]
    assert len(expired) == 25 and {f.severity for f in expired} == {Severity.NOTICE}
    # ... and the OB-issued basicConstraints CA:FALSE is an INFO.
    info = sorted(n for n, fs in results.items() for f in fs if f.code == "profile.basic_constraints.present")
    assert len(info) == 2 and {f.severity for fs in results.values() for f in fs if f.code.endswith(".present")} == {
        Severity.INFO
    }


def test_missing_aki_is_an_error_where_the_profile_does_not_downgrade_it(chain: Chain, smki: Path) -> None:
    no_aki = read_vector("organisation/dccboxed-xml-sign-90B3D51F30010000-ds.pem")
    assert [f.severity for f in check_certificate(no_aki, get_profile("smki-organisation")) if "aki" in f.code] == [
        Severity.WARNING
    ]
    own = m.mutate(chain.organisation.der, m.drop_extension("authority_key_identifier"))
    assert _errors(own, "ss1sp-organisation") == {"profile.aki.missing"}
    device = m.mutate(read_vector(_REAL["device"]), m.drop_extension("authority_key_identifier"))
    assert _errors(device, "smki-device") == {"profile.aki.missing"}


def test_nonconformant_vectors_name_the_null_parameters(smki: Path) -> None:
    paths = sorted((smki / "organisation-nonconformant").glob("*.pem"))
    assert len(paths) == 2
    for path in paths:
        der = read_vector(f"organisation-nonconformant/{path.name}")
        with pytest.raises(ValueError):
            x509.load_der_x509_certificate(der)  # why the checks parse the DER themselves
        findings = failing(check_certificate(der, get_profile("smki-organisation"), now=m.NOW))
        assert [(f.severity, f.code) for f in findings] == [(Severity.ERROR, "profile.signature.params_not_absent")]
        assert "NULL parameters" in findings[0].message and "RFC 5758 3.2" in findings[0].message


# --- the workbench's shapes, with their issuers ---------------------------------------------
def test_built_chain_passes_with_every_issuer_check(chain: Chain, workbench: dict[str, bytes]) -> None:
    cases = [
        (chain.root.der, "ss1spca-root", None),
        (chain.issuing.der, "ss1spca-issuing", chain.root.cert),
        (chain.device.der, "ss1sp-device", chain.issuing.cert),
        (chain.organisation.der, "ss1sp-organisation", chain.issuing.cert),
    ]
    for der, profile, issuer in cases:
        assert check_certificate(der, get_profile(profile), issuer=issuer, now=m.NOW) == [], profile
    for profile, der in workbench.items():
        assert check_certificate(der, get_profile(profile), now=m.NOW) == [], profile


def test_a_plain_resign_keeps_the_tbs_bytes(smki: Path) -> None:
    real = read_vector(_REAL["organisation"])
    tbs = ax.Certificate.load(real)["tbs_certificate"].dump()
    assert ax.Certificate.load(m.mutate(real))["tbs_certificate"].dump() == tbs


def test_built_x500_unique_identifier_is_encoded_like_the_real_ones(chain: Chain, smki: Path) -> None:
    def uid(der: bytes) -> bytes:
        name = ax.Certificate.load(der)["tbs_certificate"]["subject"]
        (value,) = [a["value"] for rdn in name.chosen for a in rdn if a["type"].dotted == m.X500_UNIQUE_IDENTIFIER]
        return bytes(value.dump())

    real = uid(read_vector(_REAL["organisation"]))
    built = uid(chain.organisation.der)
    # BIT STRING, 9 content octets: 0 unused bits + the 8-octet EUI-64.
    assert real[:3] == built[:3] == b"\x03\x09\x00"
    assert built[3:] == bytes.fromhex("90B3D51F30000001")


def test_issuer_checks_catch_a_stranger(chain: Chain) -> None:
    stranger = m.build_ca("Stranger", issuer=chain.root, days=4383)
    codes = _errors(chain.device.der, "ss1sp-device", issuer=stranger.cert)
    assert codes == {"profile.signature.invalid", "profile.aki.mismatch", "profile.issuer.name_mismatch"}


def test_validity_beyond_the_issuer(chain: Chain) -> None:
    short = m.build_ca("Short", issuer=chain.root, days=365)
    org = m.build_organisation(short)
    assert _errors(org.der, "ss1sp-organisation", issuer=short.cert) == {"profile.validity.beyond_issuer"}


def test_root_self_signature_and_naming(chain: Chain) -> None:
    tampered = bytearray(chain.root.der)
    tampered[-3] ^= 0x01  # inside the signature's s integer
    assert _errors(bytes(tampered), "ss1spca-root") == set()  # no issuer given: shape only
    assert _errors(bytes(tampered), "ss1spca-root", issuer=chain.root.cert) == {"profile.signature.invalid"}
    renamed = m.mutate(chain.root.der, lambda tbs: tbs.__setitem__("issuer", m.subject_of(chain.issuing.der)))
    assert "profile.issuer.not_self_issued" in _errors(renamed, "ss1spca-root")


def test_ca_basic_constraints(chain: Chain) -> None:
    path_len_3 = m.set_extension("basic_constraints", ax.BasicConstraints({"ca": True, "path_len_constraint": 3}), True)
    assert _errors(m.mutate(chain.issuing.der, path_len_3), "ss1spca-issuing") == {
        "profile.basic_constraints.path_length"
    }
    not_ca = m.set_extension("basic_constraints", ax.BasicConstraints({"ca": False}), True)
    assert _errors(m.mutate(chain.issuing.der, not_ca), "ss1spca-issuing") == {
        "profile.basic_constraints.not_ca",
        "profile.basic_constraints.path_length",
    }


def test_on_violation_warning_downgrades_to_warning(chain: Chain) -> None:
    strict = get_profile("ss1sp-organisation")
    rules = strict.rules.model_copy(
        update={
            "serial_octets_on_violation": "warning",
            "validity": strict.rules.validity.model_copy(update={"on_violation": "warning"}),
            "extensions": strict.rules.extensions.model_copy(
                update={"key_usage": strict.rules.extensions.key_usage.model_copy(update={"on_violation": "warning"})}
            ),
        }
    )
    lenient = ResolvedProfile(strict.name, strict.set_name, rules, strict.oids, strict.role_codes)
    der = m.mutate(chain.organisation.der, m.serial(2**62), m.lasting(4000), m.flip_critical("key_usage"))
    codes = {"profile.serial.length", "profile.validity.too_long", "profile.key_usage.not_critical"}
    assert _errors(der, strict) == codes
    found = check_certificate(der, lenient, now=m.NOW)
    assert {f.code: f.severity for f in found} == dict.fromkeys(codes, Severity.WARNING)


def test_fixed_not_after_comes_from_the_profile(chain: Chain) -> None:
    strict = get_profile("ss1sp-device")
    validity = strict.rules.validity.model_copy(update={"fixed_not_after": "20991231235959Z"})
    other = ResolvedProfile(
        strict.name, strict.set_name, strict.rules.model_copy(update={"validity": validity}), strict.oids, {}
    )
    assert _errors(chain.device.der, other) == {"profile.validity.not_after"}
    later = m.mutate(chain.device.der, m.not_after(datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone.utc)))
    assert _errors(later, other) == set()


def test_time_without_seconds_is_not_der(chain: Chain) -> None:
    def short_utc(tbs: ax.TbsCertificate) -> None:
        validity = tbs["validity"]
        raw = b"\x17\x0b2611240000Z" + validity["not_after"].dump()  # UTCTime without seconds
        tbs["validity"] = ax.Validity.load(b"\x30" + bytes([len(raw)]) + raw)

    assert _errors(m.mutate(chain.device.der, short_utc), "ss1sp-device") == {"profile.validity.time_encoding"}


# --- robustness -----------------------------------------------------------------------------
def test_a_crashing_check_becomes_a_fatal_finding(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(certificate, "CHECKS", (explode, *certificate.CHECKS))
    findings = check_certificate(m.mutate(chain.device.der, m.ski_not_method2), get_profile("ss1sp-device"))
    assert [(f.severity, f.code) for f in findings if f.severity == Severity.FATAL] == [
        (Severity.FATAL, "profile.check_crashed")
    ]
    assert "explode" in findings[0].message and "boom" in findings[0].message
    # The other checks still ran.
    assert "profile.ski.not_method2" in {f.code for f in findings}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x30\x03\x02\x01\x01", id="sequence-of-integer"),
        pytest.param(b"hello world", id="text"),
        pytest.param(b"\x30\x82\xff\xff\x00", id="truncated-length"),
    ],
)
def test_bytes_that_are_no_certificate_are_input_errors(data: bytes) -> None:
    with pytest.raises(InputError, match="x.der: not a DER X.509 certificate"):
        check_certificate(data, get_profile("ss1sp-device"), subject="x.der")


def test_a_crl_or_truncated_certificate_is_an_input_error(chain: Chain) -> None:
    for data in (m.build_crl(chain.issuing), chain.device.der[:-10], chain.device.der + b"\x00"):
        with pytest.raises(InputError):
            check_certificate(data, get_profile("ss1sp-device"))


def test_byte_mutations_give_input_errors_or_findings_never_exceptions(smki: Path) -> None:
    original = read_vector(_REAL["organisation"])
    profile = get_profile("smki-organisation")
    rng = random.Random(20261124)
    outcomes = {"input_error": 0, "findings": 0}
    for _ in range(400):
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            findings = check_certificate(bytes(data), profile, now=m.NOW)
        except InputError:
            outcomes["input_error"] += 1
            continue
        assert all(isinstance(f, Finding) for f in findings)
        outcomes["findings"] += 1
    assert outcomes["input_error"] > 0 and outcomes["findings"] > 0


def test_only_expiry_depends_on_the_clock(smki: Path) -> None:
    der = read_vector(_REAL["organisation"])
    profile = get_profile("smki-organisation")

    def at(year: int) -> list[Finding]:
        return check_certificate(der, profile, now=datetime(year, 1, 1, tzinfo=timezone.utc))

    assert [f for f in at(2200) if f.code != "profile.expired"] == at(1990)
    assert [(f.severity, f.code) for f in at(2200)] == [(Severity.NOTICE, "profile.expired")]
