"""Opening ceremonies: a rehearsal touches nothing of the live workspace, its checks or its token."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ceremony import procedures
from ceremony.compliance.assessment import run_control
from ceremony.compliance.sources import Evidence
from ceremony.errors import TokenError
from ceremony.model.catalogue import load_catalogue
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, DATA, live_workspace, run_examples
from tests.support.processes import in_child

CONTROLS = {c.id: c for c in load_catalogue().controls}


def _observe(root: Path) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """KEY-01 and KEY-03 on the live workspace, and its root key's attributes read back from the token."""
    live = Workspace.open(root)
    try:
        ev = Evidence(live)
        checks = [run_control(CONTROLS[cid], ev) for cid in ("KEY-01", "KEY-03")]
        return [(f.control, f.outcome, f.code) for c in checks for f in c], live.key_store.attributes(
            "ca-s1sp-root"
        ).record()
    finally:
        live.close()


def _rehearsal_labels(root: Path) -> list[str]:
    area = Workspace.open(root / "rehearsal")
    try:
        return area.key_store.labels()
    finally:
        area.close()


@pytest.mark.hsm
def test_a_rehearsal_leaves_the_live_checks_and_token_read_back_unchanged(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(ws, "root-ca")
    (ws / "registers").mkdir(exist_ok=True)
    shutil.copy2(DATA / "registers" / "hsms.yaml", ws / "registers")  # KEY-01 then reads the key's attributes
    before = _observe(ws)
    assert not [f for f in before[0] if f[1] == "indeterminate"] and ("KEY-03", "pass", "pass") in before[0], before
    # The rehearsal area's throwaway token is another token configuration: it runs in a process of its own
    # (as `ceremony run --rehearsal` runs it in a notebook kernel).
    in_child(procedures.run, CEREMONIES / "token-init.yaml", ws, rehearsal=True)
    assert in_child(_rehearsal_labels, ws) == ["ceremony-seal"]
    assert _observe(ws) == before
    # In the process that uses the live token, the rehearsal token is refused, never switched to.
    with pytest.raises(TokenError, match="configured for .*/ws/token/softhsm2.conf; the token under .*/rehearsal/"):
        _rehearsal_labels(ws)
    assert _observe(ws) == before
