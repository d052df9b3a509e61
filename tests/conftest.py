"""Shared fixtures: vectors from ../shared, SoftHSM availability (a skip locally, a failure in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ceremony.signers.pkcs11 import find_softhsm_module

REPO = Path(__file__).resolve().parents[1]
SHARED_VECTORS = REPO.parent / "shared" / "vectors" / "smki-test"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("hsm") and find_softhsm_module() is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is not installed, and CI must run every HSM test (.ci/run installs softhsm2)")
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")


@pytest.fixture
def smki_vectors() -> Path:
    """The real DCC test certificates in ../shared (never copied into the project)."""
    if not SHARED_VECTORS.is_dir():
        pytest.skip(f"real SMKI test vectors not found at {SHARED_VECTORS}")
    return SHARED_VECTORS


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may see a developer's PIN, workspace or SoftHSM configuration.
    for name in ("CEREMONY_TOKEN_PIN", "CEREMONY_SOFTWARE_PASSPHRASE", "CEREMONY_WORKSPACE", "SOFTHSM2_CONF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["software", pytest.param("pkcs11", marks=pytest.mark.hsm)])
def key_store_kind(request: pytest.FixtureRequest) -> str:
    """Both key stores: the software store everywhere, SoftHSM2 where installed (always in CI)."""
    return str(request.param)


@pytest.fixture
def ca_workspace(tmp_path: Path, key_store_kind: str):  # type: ignore[no-untyped-def]
    """A workspace with the S1SP root and issuing CA (P-256), in the parametrised key store."""
    from ceremony.issuance import create_ca
    from ceremony.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", key_store=key_store_kind)  # type: ignore[arg-type]
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
    create_ca(
        ws, "issuing", profile_name="ss1spca-issuing", common_name="Test Issuing", approved_by="alice", issuer_ca="root"
    )
    yield ws
    ws.close()
