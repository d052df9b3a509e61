"""A batch's stopwatch: laps add up per stage, and a run without a stage table records nothing."""

from __future__ import annotations

import pytest

from ceremony.issue.batch import stages as st


def test_laps_add_up_per_stage_and_return_the_new_reading() -> None:
    table: st.Stages = {}
    start = st.mark()
    after_sign = st.lap(table, st.SIGN, start)
    after_again = st.lap(table, st.SIGN, after_sign)
    st.lap(table, st.VERIFY, after_again)
    assert set(table) == {st.SIGN, st.VERIFY}
    assert table[st.SIGN] == pytest.approx(after_again - start) and table[st.SIGN] >= 0
    assert after_again >= after_sign >= start


def test_without_a_table_a_lap_only_reads_the_stopwatch() -> None:
    before = st.mark()
    assert st.lap(None, st.FILL, before) >= before


def test_the_order_names_every_stage_once() -> None:
    names = {v for k, v in vars(st).items() if k.isupper() and isinstance(v, str)}
    assert set(st.ORDER) == names and len(st.ORDER) == len(names)
