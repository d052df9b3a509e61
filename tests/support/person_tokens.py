"""A person's own SoftHSM2 token, under a configuration of its own (as a smart card is a device of its own)."""

from __future__ import annotations

from pathlib import Path

from ceremony.keys.pkcs11 import init_softhsm_token
from tests.support.material import SO_PIN
from tests.support.processes import in_child

PERSON_PIN = "carol-pin-5521"  # test-only


def person_token(base: Path, person: str, label: str | None = None) -> Path:
    """A SoftHSM2 token of the person's own, under a configuration of its own (initialised in a child
    process, so the test process's configuration stays the workspace's); returns its softhsm2.conf."""
    where = base / f"{label or person}-token"
    conf = where / "softhsm2.conf"
    in_child(init_softhsm_token, where / "tokens", conf, label or f"{person}-card", SO_PIN, PERSON_PIN)
    return conf
