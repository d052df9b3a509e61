"""The error root the command line catches: one-line diagnostics, an optional hint, exit code 2."""

from __future__ import annotations

import pytest

from ceremony.errors import CeremonyError, ConfigError, InputError, StateError, TokenError

SUBCLASSES = [InputError, ConfigError, TokenError, StateError]


def test_diagnostics_is_the_message_alone_without_a_hint() -> None:
    exc = CeremonyError("CSR signature does not verify")
    assert exc.diagnostics() == "CSR signature does not verify"
    assert exc.hint is None
    assert str(exc) == exc.message == "CSR signature does not verify"


def test_diagnostics_adds_the_hint_in_parentheses() -> None:
    exc = TokenError("no token PIN", hint="set CEREMONY_TOKEN_PIN")
    assert exc.diagnostics() == "no token PIN (set CEREMONY_TOKEN_PIN)"
    assert str(exc) == "no token PIN"


def test_an_empty_hint_adds_nothing() -> None:
    assert StateError("duplicate serial", hint="").diagnostics() == "duplicate serial"


def test_the_hint_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        CeremonyError("message", "hint")  # type: ignore[call-arg]


@pytest.mark.parametrize("cls", SUBCLASSES)
def test_every_subclass_is_a_ceremony_error_exiting_2(cls: type[CeremonyError]) -> None:
    exc = cls("bad", hint="fix it")
    assert isinstance(exc, CeremonyError)
    assert exc.exit_code == 2
    assert exc.diagnostics() == "bad (fix it)"
    with pytest.raises(CeremonyError, match="^bad$"):
        raise exc


def test_the_subclasses_are_distinct() -> None:
    for cls in SUBCLASSES:
        others = [o for o in SUBCLASSES if o is not cls]
        assert not any(issubclass(cls, o) for o in others), cls
