"""The symmetric-key ceremony: components generated, distributed, entered, checked by KCV, imported, inventoried."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.keys.symmetric import ComponentError, read_component_card
from ceremony.procedures.consoles import Unattended
from ceremony.record.transcript import read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, approve, live_workspace, run, run_examples

FILE = CEREMONIES / "symmetric-key.yaml"


def test_a_symmetric_key_ceremony_creates_checked_keys_and_records_custody(tmp_path: Path, key_store_kind: str) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "token-init")
    outcome = run(ws, FILE)
    assert verify_transcript(outcome.transcript).ok
    opened = Workspace.open(ws)
    keys = {r[0]: r for r in opened.inventory._execute("SELECT label, kcv, origin, state, purpose FROM symmetric_keys")}
    assert set(keys) == {"s1sp-tkek-1", "s1sp-dmk-1", "s1sp-dmk-2"}
    assert keys["s1sp-tkek-1"][2] == "components" and keys["s1sp-dmk-1"][2] == "token"
    assert keys["s1sp-tkek-1"][1] == opened.key_store.secret_kcv("s1sp-tkek-1")  # ECB KCV, recomputed by the store
    rows = opened.inventory._execute("SELECT key_label, component, custodian FROM key_custody ORDER BY 1, 2")
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
    assert not any((ws / "secrets" / "components").rglob("*.component"))  # only the cards hold components now
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


def test_export_and_import_under_the_transport_kek_check_kcvs(
    tmp_path: Path, key_store_kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ceremony.cli.main import main

    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "token-init")
    run(ws, FILE)
    base = ["--workspace", str(ws), "keys"]
    out = tmp_path / "dmk-2.json"
    assert main([*base, "export", "s1sp-dmk-2", "--kek", "s1sp-tkek-1", "--out", str(out)]) == 0
    assert main([*base, "export", "s1sp-tkek-1", "--kek", "s1sp-tkek-1", "--out", str(tmp_path / "x.json")]) == 2
    assert "not declared for wrapped export" in capsys.readouterr().err
    document = out.read_text()
    assert '"kcv"' in document and "s1sp-tkek-1" in document
    imported = ["import", str(out), "--kek", "s1sp-tkek-1", "--serves", "test copy"]
    assert main([*base, *imported, "--label", "dmk-2-copy"]) == 0
    assert "KCV" in capsys.readouterr().out
    opened = Workspace.open(ws)
    assert opened.key_store.secret_kcv("dmk-2-copy") == opened.key_store.secret_kcv("s1sp-dmk-2")
    lineage = [tuple(r) for r in opened.inventory._execute("SELECT key_label, kek_label, direction FROM key_wraps")]
    assert lineage == [("s1sp-dmk-2", "s1sp-tkek-1", "export"), ("dmk-2-copy", "s1sp-tkek-1", "import")]
    opened.close()
    # A file whose KCV does not match what unwraps: refused, nothing imported.
    tampered = tmp_path / "tampered.json"
    tampered.write_text(document.replace(json_kcv(document), "000000"))
    assert main([*base, *imported[:1], str(tampered), *imported[2:], "--label", "dmk-2-bad"]) == 2
    assert "nothing imported" in capsys.readouterr().err
    damaged = tmp_path / "damaged.json"
    damaged.write_text(document.replace('"wrapped": "', '"wrapped": "00'))
    assert main([*base, "import", str(damaged), "--kek", "s1sp-tkek-1", "--serves", "x", "--label", "dmk-2-bad"]) == 2
    assert "does not unwrap" in capsys.readouterr().err
    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out
    assert "dmk-2-copy" in listed and "dmk-2-bad" not in listed
    assert main([*base, "overdue"]) == 0


def json_kcv(document: str) -> str:
    import json

    return str(json.loads(document)["kcv"])


def test_keys_past_their_rotation_date_or_crypto_period_are_flagged(tmp_path: Path) -> None:
    from datetime import timedelta

    from ceremony.issue.key_transfer import overdue

    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    run(ws, FILE)
    opened = Workspace.open(ws)
    later = opened.clock.now() + timedelta(days=320)
    assert {(k.label, why.split(" since")[0]) for k, why in overdue(opened, later)} == {
        ("s1sp-dmk-1", "rotation due"),
        ("s1sp-dmk-2", "rotation due"),
    }
    much_later = opened.clock.now() + timedelta(days=400)
    assert {k.label: why.split(" (")[0] for k, why in overdue(opened, much_later)} == {
        "s1sp-dmk-1": "past its crypto-period",
        "s1sp-dmk-2": "past its crypto-period",
    }
    opened.close()


def test_a_rotation_ceremony_rewraps_dependants_and_retires_the_old_key(tmp_path: Path, key_store_kind: str) -> None:
    from ceremony.issue.key_transfer import export_key

    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "token-init")
    run(ws, FILE)
    opened = Workspace.open(ws)
    for label in ("s1sp-dmk-1", "s1sp-dmk-2"):
        export_key(opened, label, "s1sp-tkek-1", tmp_path / f"{label}.json")
    opened.close()
    outcome = run(ws, CEREMONIES / "key-rotation.yaml")
    assert verify_transcript(outcome.transcript).ok
    assert sorted(outcome.outputs) == ["s1sp-dmk-1 under s1sp-tkek-2", "s1sp-dmk-2 under s1sp-tkek-2"]
    opened = Workspace.open(ws)
    states = dict(tuple(r) for r in opened.inventory._execute("SELECT label, state FROM symmetric_keys"))
    assert states["s1sp-tkek-1"] == "deactivated" and states["s1sp-tkek-2"] == "active"
    predecessor = opened.inventory._execute(
        "SELECT predecessor FROM symmetric_keys WHERE label = 's1sp-tkek-2'"
    ).fetchone()[0]
    assert predecessor == "s1sp-tkek-1"
    rewraps = [tuple(r) for r in opened.inventory._execute(
        "SELECT key_label, kek_label FROM key_wraps WHERE direction = 'rewrap' ORDER BY key_label"
    )]  # fmt: skip
    assert rewraps == [("s1sp-dmk-1", "s1sp-tkek-2"), ("s1sp-dmk-2", "s1sp-tkek-2")]
    # The re-wrapped file imports under the successor and its KCV matches.
    from ceremony.issue.key_transfer import import_key

    path = outcome.outputs["s1sp-dmk-1 under s1sp-tkek-2"]
    kcv = import_key(opened, path, kek_label="s1sp-tkek-2", serves="check", crypto_period_days=1, rotation_days=1,
                     label="dmk-1-check")  # fmt: skip
    assert kcv == opened.key_store.secret_kcv("s1sp-dmk-1")
    opened.close()
