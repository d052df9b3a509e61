"""The one source of "now": the system clock, a pinned clock that moves with real time, and its variable."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import pytest

from ceremony.clock import PIN_VARIABLE, SYSTEM, PinnedClock, SystemClock, current, pin, pinned
from ceremony.errors import ConfigError

AT = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_the_system_clock_tells_aware_utc_time() -> None:
    before = datetime.now(timezone.utc)
    now = SystemClock().now()
    after = datetime.now(timezone.utc)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_a_pinned_clock_reads_at_at_its_anchor_and_moves_on_with_real_time() -> None:
    clock = PinnedClock(AT, time.time() - 90)
    elapsed = clock.now() - AT
    assert timedelta(seconds=90) <= elapsed < timedelta(seconds=100)
    first = clock.now()
    assert clock.now() >= first


def test_pin_converts_to_utc_and_anchors_now() -> None:
    plus_two = timezone(timedelta(hours=2))
    before = time.time()
    clock = pin(datetime(2026, 12, 1, 12, 0, tzinfo=plus_two))
    after = time.time()
    assert clock.at == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    assert clock.at.utcoffset() == timedelta(0)
    assert before <= clock.anchor <= after
    assert abs(clock.now() - clock.at) < timedelta(seconds=5)


def test_pin_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="needs a timezone"):
        pin(datetime(2026, 12, 1, 10, 0))  # noqa: DTZ001 - the naive time under test


def test_the_environment_value_round_trips_exactly() -> None:
    clock = PinnedClock(AT, 1796119200.123456789)
    text = clock.to_environment()
    assert text == f"2026-12-01T10:00:00.123456+00:00@{1796119200.123456789!r}"
    assert PinnedClock.parse(text) == clock
    fresh = pin(AT)
    assert PinnedClock.parse(fresh.to_environment()) == fresh


def test_parse_takes_any_offset_and_keeps_utc() -> None:
    clock = PinnedClock.parse("2026-12-01T11:00:00+01:00@1796119200")
    assert clock == PinnedClock(datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc), 1796119200.0)
    assert clock.at.tzinfo == timezone.utc


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-12-01T10:00:00+00:00",  # no anchor
        "2026-12-01T10:00:00@1796119200",  # no offset
        "yesterday@1796119200",
        "2026-12-01T10:00:00+00:00@soon",
        "2026-12-01T10:00:00+00:00@",
        "@1796119200",
        "2026-12-01T10:00:00+00:00@nan",
    ],
)
def test_parse_refuses_a_malformed_value_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        PinnedClock.parse(text)
    assert err.value.message == (
        f"CEREMONY_PINNED_CLOCK must be <ISO-8601 instant with offset>@<Unix seconds>, got {text!r}"
    )


@pytest.mark.parametrize("anchor", ["inf", "-inf", "1e300"])
def test_parse_refuses_an_anchor_that_is_not_a_finite_time(anchor: str) -> None:
    with pytest.raises(ConfigError, match=PIN_VARIABLE):
        PinnedClock.parse(f"2026-12-01T10:00:00+00:00@{anchor}")


def test_pinned_reads_the_variable_or_gives_none() -> None:
    text = PinnedClock(AT, 1796119200.0).to_environment()
    assert pinned({PIN_VARIABLE: text}) == PinnedClock(AT, 1796119200.0)
    assert pinned({}) is None
    assert pinned({PIN_VARIABLE: ""}) is None
    with pytest.raises(ConfigError, match=PIN_VARIABLE):
        pinned({PIN_VARIABLE: "not a time"})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, SYSTEM), ({PIN_VARIABLE: "2026-12-01T10:00:00.123456+00:00@1796119200.0"}, PinnedClock(AT, 1796119200.0))],
)
def test_current_honours_the_variable(environ: Mapping[str, str], expected: object) -> None:
    assert current(environ) == expected


def test_current_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite pins 2026-12-01T10:00Z at its start (tests/conftest.py), whatever the machine's date; the
    # clock has moved on by the time the session has run so far, and never by more than a day.
    now = current().now()
    assert isinstance(current(), PinnedClock)
    assert timedelta(0) <= now - datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc) < timedelta(days=1)
    monkeypatch.delenv(PIN_VARIABLE)
    assert current() is SYSTEM
