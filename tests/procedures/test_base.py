"""The ceremony base: a file's date against the workspace's clock, the pinned clock in a live workspace."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ceremony.clock import PIN_VARIABLE
from ceremony.errors import ConfigError
from ceremony.keys.pkcs11 import find_softhsm_module
from ceremony.record.transcript import read_entries
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.ceremony_files import CEREMONIES, live_workspace, run, variant


def _date_deviations(transcript: Path) -> list[str]:
    return [e["what"] for e in read_entries(transcript) if e["event"] == "deviation" and e["what"].startswith("run on")]


def test_a_ceremony_on_its_files_date_records_no_date_deviation(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    outcome = run(ws, CEREMONIES / "token-init.yaml")  # dated 2026-12-01, the suite's pinned day
    assert _date_deviations(outcome.transcript) == []


def test_a_ceremony_on_another_day_records_both_dates(tmp_path: Path, suite_clock) -> None:  # type: ignore[no-untyped-def]
    ws = live_workspace(tmp_path / "ws", "software")
    later = (suite_clock.now() + timedelta(days=3)).date().isoformat()
    path = variant(tmp_path / "files", "token-init.yaml", {"date": later})
    outcome = run(ws, path)
    today = suite_clock.now().date().isoformat()
    assert _date_deviations(outcome.transcript) == [f"run on {today}; the ceremony file is dated {later}"]


#: A live workspace keeps its keys on a PKCS#11 token; init leaves the token to its ceremony (no library loaded).
LIVE_STORE = "pkcs11"
needs_softhsm = pytest.mark.skipif(find_softhsm_module() is None, reason="SoftHSM2 is not installed")


@needs_softhsm
def test_a_live_workspace_refuses_a_pinned_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = __import__("os").environ[PIN_VARIABLE]
    monkeypatch.delenv(PIN_VARIABLE)
    init_workspace(tmp_path / "live", key_store=LIVE_STORE).close()
    monkeypatch.setenv(PIN_VARIABLE, pinned)
    with pytest.raises(ConfigError, match=f"{PIN_VARIABLE} is set, but .* is a live workspace"):
        Workspace.open(tmp_path / "live")
    with pytest.raises(ConfigError, match="is a live workspace"):
        init_workspace(tmp_path / "live2", key_store=LIVE_STORE)
    assert not (tmp_path / "live2").exists()


@needs_softhsm
def test_a_live_workspace_edited_into_a_test_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_VARIABLE)
    init_workspace(tmp_path / "live", key_store=LIVE_STORE).close()
    config = tmp_path / "live" / "workspace.yaml"
    config.write_text(config.read_text().replace("purpose: live", "purpose: test"))
    with pytest.raises(ConfigError, match="purpose is 'test', but the journal recorded 'live' at init"):
        Workspace.open(tmp_path / "live")
