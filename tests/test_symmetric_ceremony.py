"""The symmetric-key ceremony: components generated, distributed, entered, checked by KCV, imported, inventoried."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.consoles import Unattended
from ceremony.symmetric import ComponentError, read_component_card
from ceremony.transcript import read_entries, verify_transcript
from ceremony.workspace import Workspace
from tests.ceremony_files import CEREMONIES, approve, live_workspace, run, run_examples

FILE = CEREMONIES / "symmetric-key.yaml"


def test_a_symmetric_key_ceremony_creates_checked_keys_and_records_custody(tmp_path: Path, key_store_kind: str) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "token-init")
    outcome = run(ws, FILE)
    assert verify_transcript(outcome.transcript).ok
    opened = Workspace.open(ws)
    keys = {r[0]: r for r in opened.inventory.execute("SELECT label, kcv, origin, state, purpose FROM symmetric_keys")}
    assert set(keys) == {"s1sp-tkek-1", "s1sp-dmk-1", "s1sp-dmk-2"}
    assert keys["s1sp-tkek-1"][2] == "components" and keys["s1sp-dmk-1"][2] == "token"
    assert keys["s1sp-tkek-1"][1] == opened.key_store.secret_kcv("s1sp-tkek-1")  # ECB KCV, recomputed by the store
    rows = opened.inventory.execute("SELECT key_label, component, custodian FROM key_custody ORDER BY 1, 2")
    custody = [tuple(r) for r in rows]
    assert custody == [
        ("s1sp-dmk-2", 1, "carol"), ("s1sp-dmk-2", 2, "erin"),
        ("s1sp-tkek-1", 1, "carol"), ("s1sp-tkek-1", 2, "dave"), ("s1sp-tkek-1", 3, "erin"),
    ]  # fmt: skip
    opened.close()
    cards = sorted((ws / "share-cards").glob("symmetric-keys-2026-12.*.component-*.txt"))
    assert len(cards) == 5 and all(c.stat().st_mode & 0o777 == 0o600 for c in cards)
    text = outcome.transcript.read_text()
    for card in cards:
        assert read_component_card(card).hex() not in text.lower()  # only KCVs on record
    steps = {e["step"]: e for e in read_entries(outcome.transcript) if e.get("event") == "step"}
    tkek = steps["components.generate"]["details"]["keys"]["s1sp-tkek-1"]
    assert set(tkek["components"]) == {"carol", "dave", "erin"} and len(tkek["kcv"]) == 6


class _Typing(Unattended):
    """Unattended, except that one custodian enters a given component for one key."""

    def __init__(self, ws_root: Path, key: str, custodian: str, value: bytes) -> None:
        super().__init__(Workspace.open(ws_root))
        self.key, self.custodian, self.value = key, custodian, value

    def present_component(self, key_label: str, custodian: str) -> str:
        if (key_label, custodian) == (self.key, self.custodian):
            return self.value.hex()
        return super().present_component(key_label, custodian)


@pytest.mark.parametrize("case", ["mistyped", "from another key"])
def test_a_wrong_component_or_combination_imports_nothing(tmp_path: Path, case: str) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    approve(ws, FILE)
    ceremony = procedures.begin(FILE, ws)
    ceremony.step("activate")
    ceremony.step("components")
    deposited = ws / "secrets" / "components"
    carol = bytes.fromhex((deposited / "s1sp-tkek-1" / "carol.component").read_text())
    if case == "mistyped":
        wrong = bytearray(carol)
        wrong[0] ^= 0x80
        expected = "carol's component does not match its KCV"
    else:
        wrong = bytearray(bytes.fromhex((deposited / "s1sp-dmk-2" / "carol.component").read_text()))
        wrong += bytes(16)  # same length as the 256-bit KEK's components, but another key's
        expected = "carol's component does not match its KCV"
    ceremony.console = _Typing(ws, "s1sp-tkek-1", "carol", bytes(wrong))
    with pytest.raises(ComponentError, match=expected) as err:
        ceremony.step("combine")
    assert carol.hex() not in str(err.value)
    assert not list((ws / "secrets" / "keys").glob("s1sp-tkek-1*"))  # nothing imported
    failed = read_entries(ceremony.transcript.path)[-1]
    assert failed["event"] == "step.failed" and failed["error"] == "ComponentError"
    ceremony.ws.close()
