"""Key-store fixtures: a fresh SoftHSM2 token under tmp_path for every test that asks for one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ceremony.keys.pkcs11 import Pkcs11KeyStore, find_softhsm_module, init_softhsm_token
from tests.support.material import PIN, SO_PIN, TOKEN


@pytest.fixture
def softhsm_module() -> str:
    """The SoftHSM2 module path (the root conftest fails instead of skipping in CI)."""
    module = find_softhsm_module()
    if module is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    return module


@pytest.fixture
def new_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, softhsm_module: str) -> Callable[..., Path]:
    """A factory: initialise a token under ``tmp_path/<where>`` and return its softhsm2.conf."""

    def make(label: str = TOKEN, where: str = "softhsm") -> Path:
        conf = tmp_path / where / "softhsm2.conf"
        # For stores opened without a conf (the test runs in a process of its own: tests/conftest.py).
        monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
        init_softhsm_token(tmp_path / where / "tokens", conf, label, SO_PIN, PIN, module=softhsm_module)
        return conf

    return make


@pytest.fixture
def store(new_token: Callable[..., Path], softhsm_module: str) -> Iterator[Pkcs11KeyStore]:
    """A logged-in store on a fresh token labelled ``test-token``."""
    new_token()
    ks = Pkcs11KeyStore(softhsm_module, TOKEN, PIN)
    yield ks
    ks.close()
