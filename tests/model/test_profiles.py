"""Profiles are data: they load strictly, resolve OIDs, and take production OIDs from configuration."""

from __future__ import annotations

import pytest

from ceremony.errors import InputError
from ceremony.model.profiles import available_profiles, get_profile


def test_all_profiles_load_with_a_policy_ref() -> None:
    names = available_profiles()
    for required in (
        "ss1spca-root",
        "ss1spca-issuing",
        "ss1sp-organisation",
        "ss1sp-device",
        "smki-device",
        "smki-organisation",
    ):
        assert required in names
        assert get_profile(required).rules.policy_ref


def test_demo_oids_use_the_documentation_arc() -> None:
    for name in ("ss1spca-root", "ss1spca-issuing", "ss1sp-organisation", "ss1sp-device"):
        profile = get_profile(name)
        assert all(oid.startswith("1.3.6.1.4.1.32473.") for oid in profile.policy_oids)
    assert get_profile("ss1sp-device").hw_type_oid == "1.3.6.1.4.1.32473.2.1"


def test_production_oids_come_from_configuration() -> None:
    profile = get_profile("ss1sp-device", {"environment_policy": "1.2.3.4", "unrelated": "9.9"})
    assert profile.policy_oids == ["1.2.3.4"]


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown profile 'nope'; known: .*ss1sp-device"):
        get_profile("nope")
