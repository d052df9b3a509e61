"""Workspaces: layout, secrets kept 0600 and out of workspace.yaml, refusal of non-empty folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ceremony.errors import ConfigError, InputError, StateError, TokenError
from ceremony.record.workspace import Workspace, init_workspace


def test_layout_and_secret_modes(tmp_path: Path, key_store_kind: str) -> None:
    ws = init_workspace(tmp_path / "ws", key_store=key_store_kind, purpose="test")  # type: ignore[arg-type]
    assert ws.config.key_store.kind == key_store_kind
    for sub in ("artifacts", "transcripts", "secrets", "share-cards"):
        assert (ws.root / sub).is_dir()
    for secret in (ws.root / "secrets").iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        # No secret value is written anywhere else in the workspace.
        value = secret.read_text().strip()
        for other in ws.root.rglob("*"):
            if other.is_file() and "secrets" not in other.parts and "token" not in other.parts:
                assert value not in other.read_text(errors="ignore")
    assert stat.S_IMODE((ws.root / "secrets").stat().st_mode) == 0o700
    assert ws.journal.entries()[0]["event"] == "workspace.init"
    ws.close()


def test_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x").write_text("x")
    with pytest.raises(InputError, match="exists and is not empty"):
        init_workspace(tmp_path / "ws", key_store="software", purpose="test")


def test_opening_a_folder_that_is_no_workspace(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a workspace"):
        Workspace.open(tmp_path)


@pytest.mark.plants_secrets  # a 0644 secret file is the point of the test
def test_a_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    ws.close()
    secret = tmp_path / "ws" / "secrets" / "software-store.passphrase"
    secret.chmod(0o644)
    with pytest.raises(TokenError, match="readable by its owner only"):
        Workspace.open(tmp_path / "ws").key_store  # noqa: B018 - opening the store reads the secret


# --- what a live workspace never holds, and the mark of one that is not live -------------------------------
needs_softhsm = pytest.mark.skipif(
    __import__("ceremony.keys.pkcs11", fromlist=["x"]).find_softhsm_module() is None, reason="SoftHSM2 is not installed"
)


@pytest.fixture
def system_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A live workspace refuses the suite's pinned clock.
    from ceremony.clock import PIN_VARIABLE

    monkeypatch.delenv(PIN_VARIABLE)


@needs_softhsm
def test_a_live_workspace_is_created_without_any_pin_and_its_token_left_to_its_ceremony(
    tmp_path: Path, system_clock: None
) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="pkcs11")
    assert ws.live and ws.mark is None
    assert list((ws.root / "secrets").iterdir()) == []
    assert ws.journal.entries()[0]["token_initialised"] is False
    with pytest.raises(TokenError, match=r"is not activated: its custodians activate it with `ceremony --workspace"):
        ws.key_store  # noqa: B018
    ws.close()


@needs_softhsm
def test_a_live_workspace_refuses_a_pin_written_at_init_and_the_software_store(
    tmp_path: Path, system_clock: None
) -> None:
    with pytest.raises(InputError, match="init writes no PIN"):
        init_workspace(tmp_path / "a", key_store="pkcs11", initialise_token=True)
    with pytest.raises(InputError, match="the software key store is for trying the tool: --purpose test"):
        init_workspace(tmp_path / "b", key_store="software")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_removed_mark_is_refused_and_an_assessment_opens_it_as_live(tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", key_store="software", purpose="demo").close()
    config = tmp_path / "ws" / "workspace.yaml"
    config.write_text(config.read_text().replace("purpose: demo\n", ""))
    with pytest.raises(ConfigError, match="purpose is 'live', but the journal recorded 'demo' at init"):
        Workspace.open(tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws", assessing=True)
    assert ws.live  # the stricter of the two; and the suite's pinned clock is not honoured
    assert ws.clock is __import__("ceremony.clock", fromlist=["x"]).SYSTEM
    ws.close()


def test_a_trial_workspace_names_its_pin_variable_when_no_pin_is_found(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test", initialise_token=False)
    with pytest.raises(TokenError, match=r"activate the token \(`ceremony activate`\), set CEREMONY_SOFTWARE_PASS"):
        ws.key_store  # noqa: B018
    ws.close()


def test_init_names_the_token_as_the_shipped_ceremony_files_and_hsm_register_do(tmp_path: Path) -> None:
    """Issue K: `ceremony init` once named its token s1spki-workbench, the shipped files s1sp-ca-token."""
    import yaml

    from ceremony.cli.main import main
    from ceremony.record.workspace import DEFAULT_TOKEN_LABEL

    data = Path(__file__).resolve().parents[2] / "data"
    labels = {p.name: yaml.safe_load(p.read_text())["token"]["label"] for p in (data / "ceremonies").glob("*.yaml")}
    assert labels["token-init.yaml"] == DEFAULT_TOKEN_LABEL == "s1sp-ca-token"
    # Every file works on the workspace's token, but restore and destruction on the restore token and a backup
    # re-wrap on a scratch token of its own.
    assert {name for name, label in labels.items() if label != DEFAULT_TOKEN_LABEL} == {
        "key-restore.yaml",
        "key-destruction.yaml",
        "backup-rewrap.yaml",
    }
    hsms = yaml.safe_load((data / "registers" / "hsms.yaml").read_text())["hsms"]
    assert any(DEFAULT_TOKEN_LABEL in hsm["token_labels"] for hsm in hsms)
    argv = ["--workspace", str(tmp_path / "cli"), "init", "--no-token", "--key-store", "software", "--purpose", "test"]
    assert main(argv) == 0
    opened = Workspace.open(tmp_path / "cli")
    assert opened.token_label == DEFAULT_TOKEN_LABEL  # the command's default
    opened.close()
    ws = init_workspace(tmp_path / "api", key_store="software", initialise_token=False, purpose="test")
    assert ws.token_label == DEFAULT_TOKEN_LABEL  # the function's default
    ws.close()


def test_discard_removes_what_a_ceremony_made_and_nothing_outside_or_through_a_link(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    cards = ws.share_cards_dir
    cards.mkdir(parents=True, exist_ok=True)
    (cards / "c1.card").write_text("x")
    shares = ws.shares_dir("tok.user-pin")
    shares.mkdir(parents=True)
    (shares / "alice.share").write_text("y")
    assert ws.discard(cards / "c1.card") == "share-cards/c1.card"
    assert ws.discard(shares) == "secrets/shares/tok.user-pin"
    assert not (cards / "c1.card").exists() and not shares.exists()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (cards / "link").symlink_to(outside)
    for path in (outside, cards / "link", ws.root):
        with pytest.raises(StateError, match="left as it is"):
            ws.discard(path)
    assert outside.read_text() == "keep" and (cards / "link").is_symlink()
    (cards / "link").unlink()  # planted by the test, not left for the after-test scan
    ws.close()
