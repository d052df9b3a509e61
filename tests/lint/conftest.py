"""Fixtures for the profile checks: a built chain, the workbench's own certificates, real vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import pem
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, Issuer, build_tbs, key_identifier
from tests.support import mutants as m

#: ../shared/vectors/smki-test, read in place (PROVENANCE.md there); never copied into the project.
SMKI_VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "smki-test"


def read_vector(relative: str) -> bytes:
    """The DER of one real DCC test certificate (the PEM files hold one block each)."""
    return bytes(pem.unarmor((SMKI_VECTORS / relative).read_bytes())[2])


@pytest.fixture
def smki() -> Path:
    if not SMKI_VECTORS.is_dir():
        pytest.skip(f"real SMKI test vectors not found at {SMKI_VECTORS.resolve()}")
    return SMKI_VECTORS


@dataclass(frozen=True)
class Chain:
    root: m.Built
    issuing: m.Built
    device: m.Built
    organisation: m.Built


@pytest.fixture(scope="session")
def chain() -> Chain:
    """Root → issuing → device and organisation, built with cryptography independently of ceremony.model.tbs."""
    root = m.build_ca("Test Root")
    issuing = m.build_ca("Test Issuing", issuer=root, days=4383)
    return Chain(root, issuing, m.build_device(issuing), m.build_organisation(issuing))


@pytest.fixture(scope="session")
def workbench() -> dict[str, bytes]:
    """The workbench's own device and organisation certificates (ceremony.model.tbs, software keys)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build_tbs(
        Identity(role="07", name="Issuing"),
        ca_key.public_key(),
        get_profile("ss1spca-issuing"),
        None,
        m.serial16(),
        m.NOW,
    ).sign(ca_key, hashes.SHA256())
    issuer = Issuer(ca.subject, key_identifier(ca_key.public_key()), ca.not_valid_after_utc)
    out = {}
    for profile, identity in (
        ("ss1sp-device", Identity(eui64="00DB123456789001", usage="ds")),
        ("ss1sp-organisation", Identity(eui64="90B3D51F30000001", usage="ka", role="02", name="SUPPLIER")),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = build_tbs(identity, key.public_key(), get_profile(profile), issuer, m.serial16(), m.NOW)
        out[profile] = cert.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return out
