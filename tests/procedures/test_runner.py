"""Opening ceremonies: a rehearsal touches nothing of the live workspace, its checks or its token."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ceremony import procedures
from ceremony.compliance.assessment import run_control
from ceremony.compliance.sources import Evidence
from ceremony.model.catalogue import load_catalogue
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, DATA, live_workspace, run_examples

CONTROLS = {c.id: c for c in load_catalogue().controls}


def _observe(root: Path, *, open_rehearsal_first: bool) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """KEY-01 and KEY-03 on the live workspace and its root key's attributes read back from the token; with
    ``open_rehearsal_first``, the rehearsal area's token is opened in this process first (as a process that
    reads both, like the checks' frames of every ceremony, does)."""
    live = Workspace.open(root)
    rehearsal = Workspace.open(root / "rehearsal") if open_rehearsal_first else None
    try:
        if rehearsal is not None:
            assert rehearsal.key_store.labels() == ["ceremony-seal"]  # the throwaway token, activated from shares
        ev = Evidence(live)
        findings = [(f.control, f.outcome, f.code) for cid in ("KEY-01", "KEY-03") for f in run_control(CONTROLS[cid], ev)]
        return findings, live.key_store.attributes("ca-s1sp-root").record()
    finally:
        live.close()
        if rehearsal is not None:
            rehearsal.close()


@pytest.mark.hsm
def test_a_rehearsal_leaves_the_live_checks_and_token_read_back_unchanged(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "root-ca")
    (ws / "registers").mkdir(exist_ok=True)
    shutil.copy2(DATA / "registers" / "hsms.yaml", ws / "registers")  # KEY-01 then reads the key's attributes
    before = _observe(ws, open_rehearsal_first=False)
    assert not [f for f in before[0] if f[1] == "indeterminate"] and ("KEY-03", "pass", "pass") in before[0], before
    procedures.run(CEREMONIES / "token-init.yaml", ws, rehearsal=True)  # the rehearsal area's own token
    after = _observe(ws, open_rehearsal_first=True)
    assert after == before
