"""Template-conformance lint: for every input, exactly the findings of the full lint, certificate by certificate.

The same inputs go through ``check_certificates`` (the template path, falling back to the full lint) and
through ``check_certificate`` one by one: every mutant class of test_certificate.py and the variable-field
mutants below, mixed into batches of good certificates in several orders, the 435 real DCC test certificates,
and a real batch issued by the workbench, with and without the issuer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import Finding
from ceremony.lint.template import check_certificates
from ceremony.model.profiles import ResolvedProfile, get_profile
from ceremony.model.tbs import Identity, Issuer, build_tbs, key_identifier
from ceremony.record.workspace import Workspace
from tests.lint.conftest import Chain, read_vector
from tests.lint.test_certificate import BASES, MUTANTS
from tests.support import mutants as m
from tests.support.ceremony_files import device_list

Outcome = list[Finding] | str


def _full(ders: Sequence[bytes], profile: ResolvedProfile, **kwargs: object) -> list[Outcome]:
    out: list[Outcome] = []
    for n, der in enumerate(ders):
        try:
            out.append(check_certificate(der, profile, subject=f"c{n}", **kwargs))  # type: ignore[arg-type]
        except InputError as exc:
            out.append(f"InputError: {exc}")
    return out


def assert_same_findings(ders: Sequence[bytes], profile: ResolvedProfile, **kwargs: object) -> int:
    """Both paths over ``ders``; returns how many took the template path."""
    subjects = [f"c{n}" for n in range(len(ders))]
    expected = _full(ders, profile, **kwargs)
    if any(isinstance(e, str) for e in expected):
        with pytest.raises(InputError):
            check_certificates(ders, profile, subjects=subjects, **kwargs)  # type: ignore[arg-type]
        good = [d for d, e in zip(ders, expected, strict=True) if not isinstance(e, str)]
        return assert_same_findings(good, profile, **kwargs)
    linted = check_certificates(ders, profile, subjects=subjects, **kwargs)  # type: ignore[arg-type]
    for n, (got, want) in enumerate(zip(linted.findings, expected, strict=True)):
        assert got == want, f"certificate {n}: template path {got} != full lint {want}"
    return linted.templated


# --- good certificates of one template ----------------------------------------------------------------
def _workbench_batch(
    issuer: m.Built, profile: str, count: int, *, usage: str = "ds", now: datetime = m.NOW
) -> list[bytes]:
    """Certificates of the workbench's own builder (ceremony.model.tbs) under one issuer: a template's worth."""
    ca_key = issuer.key
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cert = x509.load_der_x509_certificate(issuer.der)
    who = Issuer(cert.subject, key_identifier(ca_key.public_key()), cert.not_valid_after_utc)
    out = []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        identity = (
            Identity(eui64=f"{0x00DB123456780000 + n:016X}", usage=usage)  # type: ignore[arg-type]
            if profile.endswith("device")
            else Identity(eui64=f"{0x90B3D51F30000000 + n:016X}", usage=usage, role="02", name="SUPPLIER")  # type: ignore[arg-type]
        )
        tbs = build_tbs(identity, key.public_key(), get_profile(profile), who, m.serial16(), now)
        out.append(tbs.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    return out


def _goods(origin: str, kind: str, chain: Chain) -> list[bytes]:
    if origin == "workbench":
        return _workbench_batch(chain.issuing, f"ss1sp-{kind}", 6)
    if origin == "cryptography":
        build = m.build_device if kind == "device" else m.build_organisation
        return [build(chain.issuing).der for _ in range(6)]
    real = {"device": "device/00db123456789001-ds.pem", "organisation": "organisation/dccboxed-Z1-supplier-ka.pem"}
    base = read_vector(real[kind])
    # Re-signed copies differ only in their signature: the same TBS (a template of one).
    return [m.mutate(base) for _ in range(3)]


# --- variable-field mutants: each edits one field the template leaves open, in place -----------------
def _edit_tbs(der: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    tbs = ax.Certificate.load(der)["tbs_certificate"]
    return m.resign(ax.TbsCertificate.load(edit(bytes(tbs.dump()))))


def _time_contents(der: bytes, field: str) -> bytes:
    value = ax.Certificate.load(der)["tbs_certificate"]["validity"][field]
    return b"\x17\x0d" + bytes(value.chosen.contents)


def _not_before(new: bytes) -> Callable[[bytes], bytes]:
    def mutate(der: bytes) -> bytes:
        old = _time_contents(der, "not_before")
        return _edit_tbs(der, lambda tbs: tbs.replace(old, b"\x17\x0d" + new, 1))

    return mutate


def _serial_octets(new: bytes) -> Callable[[bytes], bytes]:
    def mutate(der: bytes) -> bytes:
        contents = bytes(ax.Certificate.load(der)["tbs_certificate"]["serial_number"].contents)
        assert len(new) == len(contents)
        return _edit_tbs(
            der,
            lambda tbs: tbs.replace(b"\x02" + bytes([len(contents)]) + contents, b"\x02" + bytes([len(new)]) + new, 1),
        )

    return mutate


def _point_above_p(der: bytes) -> bytes:
    """x + p for a small x on P-256: the same point mod p, but not a field element (never "on the curve")."""
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    for x in range(1, 1000):
        rhs = (x**3 - 3 * x + b) % p
        y = pow(rhs, (p + 1) // 4, p)  # p = 3 mod 4
        if y * y % p == rhs:
            point = b"\x04" + (x + p).to_bytes(32, "big") + y.to_bytes(32, "big")
            return m.mutate(der, m.ec_point(lambda _k, pt=point: pt))
    raise AssertionError("no small x on P-256")


def _flip_signature(der: bytes) -> bytes:
    return der[:-1] + bytes([der[-1] ^ 0x01])


def _unused_bits(der: bytes) -> bytes:
    cert = ax.Certificate.load(der)
    tbs_len = len(cert["tbs_certificate"].dump())
    at = der.find(b"\x03", 4 + tbs_len)
    return der[: at + 2] + b"\x01" + der[at + 3 :]


VARIABLE_MUTANTS: dict[str, Callable[[bytes], bytes]] = {
    "serial-zero-16-octets": _serial_octets(b"\x00" * 16),
    "serial-high-bit-16-octets": _serial_octets(b"\x80" + b"\x11" * 15),
    "serial-leading-zero-16-octets": _serial_octets(b"\x00\x11" + b"\x22" * 14),
    "not-before-month-13": _not_before(b"261301000000Z"),
    "not-before-second-60": _not_before(b"261201000060Z"),
    "not-before-not-digits": _not_before(b"26120100000AZ"),
    "not-before-not-zulu": _not_before(b"2612010000000"),
    "not-before-1999": _not_before(b"991231235959Z"),
    "not-before-2049": _not_before(b"491231235959Z"),
    "not-before-feb-29-leap": _not_before(b"280229120000Z"),
    "not-before-feb-29-not-leap": _not_before(b"270229120000Z"),
    "point-off-curve": lambda der: m.mutate(der, m.ec_point(m.off_curve)),
    "point-x-above-p": _point_above_p,
    "ski-not-method-2": lambda der: m.mutate(der, m.ski_not_method2),
    "signature-flipped": _flip_signature,
    "signature-unused-bits": _unused_bits,
    "trailing-octet": lambda der: der + b"\x00",
    "truncated": lambda der: der[:-1],
}


@pytest.mark.parametrize("kind", ["device", "organisation"])
def test_every_mutant_class_gets_the_full_lints_findings(kind: str, chain: Chain, smki: Path) -> None:
    rng = random.Random(7)
    for profile_name, origin in BASES[kind]:
        profile = get_profile(profile_name)
        goods = _goods(origin, kind, chain)
        base = goods[0]
        mutated = []
        for _, mutant in sorted(MUTANTS.items()):
            if kind in mutant.kinds:
                signer = mutant.signer() if mutant.signer else None
                mutated.append(m.mutate(base, *mutant.make(base), signer=signer, outer=mutant.outer))
        mutated += [mutate(base) for mutate in VARIABLE_MUTANTS.values()]
        for order in ("goods first", "mutants first", "shuffled"):
            batch = goods + mutated if order == "goods first" else mutated + goods
            if order == "shuffled":
                batch = rng.sample(batch, len(batch))
            templated = assert_same_findings(batch, profile, now=m.NOW)
            assert_same_findings(batch, profile, now=m.NOW + timedelta(days=40_000))
            if origin != "real" and order == "goods first":
                # The goods after the first (the exemplar) take the template path, whatever the mutants do.
                assert templated >= len(goods) - 1, f"{profile_name}/{origin}: only {templated} templated"


def test_with_the_issuer_signatures_and_issuer_checks_are_the_full_lints(chain: Chain) -> None:
    profile = get_profile("ss1sp-device")
    goods = _workbench_batch(chain.issuing, "ss1sp-device", 20)
    stranger = m.build_ca("Stranger", issuer=chain.root, days=4383)
    foreign = _workbench_batch(stranger, "ss1sp-device", 3)
    batch = goods + [_flip_signature(goods[3]), m.mutate(goods[4])] + foreign
    issuer = x509.load_der_x509_certificate(chain.issuing.der)
    templated = assert_same_findings(batch, profile, issuer=issuer, now=m.NOW)
    assert templated == len(goods) - 1
    codes = {f.code for f in check_certificate(batch[20], profile, issuer=issuer)}
    assert "profile.signature.invalid" in codes, "the flipped signature must be reported"


def test_both_usages_and_a_clock_past_the_batch(chain: Chain) -> None:
    profile = get_profile("ss1sp-device")
    batch = _workbench_batch(chain.issuing, "ss1sp-device", 10) + _workbench_batch(
        chain.issuing, "ss1sp-device", 10, usage="ka"
    )
    assert assert_same_findings(random.Random(3).sample(batch, 20), profile, now=m.NOW) == 18
    organisation = _workbench_batch(chain.issuing, "ss1sp-organisation", 10)
    # An organisation certificate expires: after its notAfter every one takes the full lint, with the NOTICE.
    later = datetime(2060, 1, 1, tzinfo=timezone.utc)
    assert assert_same_findings(organisation, get_profile("ss1sp-organisation"), now=later) == 0
    assert assert_same_findings(organisation, get_profile("ss1sp-organisation"), now=m.NOW) == 9
    # Issued six years apart: the older ones expired, the exemplar (first) did not.
    old = _workbench_batch(chain.issuing, "ss1sp-organisation", 5, now=m.NOW - timedelta(days=6 * 365))
    mixed = organisation + old
    assert assert_same_findings(mixed, get_profile("ss1sp-organisation"), now=m.NOW) == 9
    assert sum(f.code == "profile.expired" for fs in _full(mixed, get_profile("ss1sp-organisation"), now=m.NOW)
               for f in fs) == 5  # fmt: skip


def test_the_435_dcc_test_certificates(smki: Path) -> None:
    files = sorted(smki.rglob("*.pem"))
    ders = [bytes(pem.unarmor(f.read_bytes())[2]) for f in files]
    assert len(ders) == 435
    by_kind: dict[str, list[bytes]] = {}
    for f, der in zip(files, ders, strict=True):
        by_kind.setdefault(f.relative_to(smki).parts[0], []).append(der)
    checked = 0
    for _, group in sorted(by_kind.items()):
        for profile_name in ("smki-device", "smki-organisation"):
            assert_same_findings(group, get_profile(profile_name), now=m.NOW)
        checked += len(group)
    assert checked == 435


def test_a_real_batch_from_the_workbench(ca_workspace: Workspace, tmp_path: Path) -> None:
    from ceremony.issue.batch import issue_batch

    devices = device_list(tmp_path / "list", 30)
    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
                progress=False)  # fmt: skip
    rows = [r for r in ca_workspace.inventory.signed_certificates(["issuing"]) if r.profile == "ss1sp-device"]
    assert len(rows) == 60
    issuer = x509.load_der_x509_certificate(ca_workspace.inventory.ca_certificate_der("issuing"))
    profile = get_profile("ss1sp-device", ca_workspace.config.oids)
    ders = [r.der for r in rows]
    # Two templates (ds, ka): all but their two exemplars on the template path, with and without the issuer.
    assert assert_same_findings(ders, profile, issuer=issuer, now=ca_workspace.clock.now()) == 58
    assert assert_same_findings(ders, profile, now=ca_workspace.clock.now()) == 58
    tampered = ders[:10] + [_flip_signature(ders[10]), _serial_octets(b"\x80" + b"\x01" * 15)(ders[11])]
    assert assert_same_findings(tampered, profile, issuer=issuer, now=ca_workspace.clock.now()) >= 8
