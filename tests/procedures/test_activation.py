"""A live workspace set up attended, then opened for daily work by its custodians, never by a PIN at rest.

Every test here is an ``hsm`` test (SoftHSM2, forked). The suite's pinned clock is taken away: a live
workspace keeps the system clock. The custodians are played by :class:`tests.support.custodians.Custodians`,
which keeps what they would carry on paper in memory only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony import procedures
from ceremony.cli.main import main
from ceremony.clock import PIN_VARIABLE
from ceremony.errors import CeremonyError, ConfigError, TokenError
from ceremony.keys.custody import combine, pin_from_secret
from ceremony.keys.pkcs11 import find_softhsm_module
from ceremony.model.events import Event
from ceremony.procedures import activation
from ceremony.procedures.consoles import Unattended
from ceremony.record.workspace import PIN_ENV, Workspace, init_workspace
from tests.support.ceremony_files import CEREMONIES, approve, write_register
from tests.support.csr_factory import good_org_csr
from tests.support.custodians import Custodians

pytestmark = pytest.mark.hsm
TOKEN = "s1sp-ca-token"  # noqa: S105 - a label
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Custodians]:
    """A live workspace whose token, root and issuing CA were set up in attended ceremonies."""
    if find_softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    for name in (PIN_VARIABLE, PIN_ENV, "SOFTHSM2_CONF"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "ws"
    init_workspace(root, key_store="pkcs11", token_label=TOKEN).close()
    write_register(root)  # the workspace's own register (there is no fallback to the example)
    people = Custodians()
    for kind in ("token-init", "root-ca", "issuing-ca"):
        approve(root, CEREMONIES / f"{kind}.yaml")
        procedures.run(CEREMONIES / f"{kind}.yaml", root, console=people)
    assert people.cards_on_disk and set(people.cards_on_disk) == {1}, "a live workspace holds one card at a time"
    yield root, people
    activation.end(_open(root))


def _open(root: Path) -> Workspace:
    return Workspace.open(root)


def _typed(people: Custodians, who: tuple[str, ...] = ("carol", "dave")) -> str:
    held = people.shares[f"{TOKEN}.user-pin"]
    return "".join(f"{c}\n{held[c]}\n" for c in who)


def _activate(root: Path, typed: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`ceremony activate` at a terminal, the custodians typing their ids and shares."""
    return subprocess.run(
        [sys.executable, "-m", "ceremony", "--workspace", str(root), "activate", *extra],
        input=typed, capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip


def _events(root: Path, event: Event) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines() if f'"{event}"' in line]


def test_a_live_workspace_issues_revokes_and_publishes_after_activation_and_keeps_no_secret(
    live: tuple[Path, Custodians], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, people = live
    assert main(["--workspace", str(root), "crl", "--ca", "s1sp-issuing", "--by", "bob"]) == 2
    assert f"token '{TOKEN}' is not activated: its custodians activate it with" in capsys.readouterr().err

    done = _activate(root, _typed(people), "--minutes", "5")
    assert done.returncode == 0, done.stderr
    assert f"token '{TOKEN}' activated by carol, dave until" in done.stdout
    csr = tmp_path / "org.csr"
    csr.write_bytes(good_org_csr("90B3D51F30000001", "02", "S1SPLIVE")[0])
    issue = ["issue", "--ca", "s1sp-issuing", "--profile", "ss1sp-organisation", "--eui64", "90B3D51F30000001",
             "--usage", "ds", "--role", "02", "--name", "S1SPLIVE", "--approved-by", "bob", "--json",
             str(csr)]  # fmt: skip
    assert main(["--workspace", str(root), *issue]) == 0
    serial = json.loads(capsys.readouterr().out)["serial"]
    revoke = ["revoke", serial, "--ca", "s1sp-issuing", "--reason", "superseded", "--requested-by", "bob",
              "--approved-by", "alice"]  # fmt: skip
    assert main(["--workspace", str(root), *revoke]) == 0
    assert main(["--workspace", str(root), "crl", "--ca", "s1sp-issuing", "--by", "bob"]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["--workspace", str(root), "activate", "--end"]) == 0
    assert main(["--workspace", str(root), "crl", "--ca", "s1sp-issuing", "--by", "bob"]) == 2

    (started,) = _events(root, Event.TOKEN_ACTIVATED)
    (ended,) = _events(root, Event.TOKEN_ACTIVATION_ENDED)
    assert started["custodians"] == ["carol", "dave"] and started["quorum_m"] == 2
    assert ended["session"] == started["session"] and ended["reason"] == "ended"
    assert ended["operations"] == 3  # the certificate, the CRL and the journal checkpoint signed with it

    # find WS: no PIN, no share, no quorum of any secret, anywhere in the workspace
    pin = pin_from_secret(combine(list(people.shares[f"{TOKEN}.user-pin"].values())[:2])).encode()
    every_share = [w.encode() for held in people.shares.values() for w in held.values()]
    for path in root.rglob("*"):
        if path.is_file() and "token" not in path.relative_to(root).parts[:1]:
            data = path.read_bytes()
            assert pin not in data, path
            assert not any(share in data for share in every_share), path
    assert sorted(p.name for p in (root / "secrets").rglob("*")) == []
    assert sorted(p.name for p in (root / "share-cards").rglob("*")) == []
    assert not (root / "run" / "token.sock").exists()


def test_a_share_that_is_not_the_one_on_record_opens_nothing(live: tuple[Path, Custodians]) -> None:
    root, people = live
    held = people.shares[f"{TOKEN}.user-pin"]
    swapped = f"carol\n{held['dave']}\ndave\n{held['carol']}\n"
    before = (root / "journal.jsonl").read_bytes()
    done = _activate(root, swapped)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "ceremony: carol's share is not the one recorded for them when the token's PIN was last set "
        "(token-init-2026-12)"
    )
    assert held["dave"] not in done.stderr + done.stdout
    assert (root / "journal.jsonl").read_bytes() == before


def test_the_session_ends_when_its_operations_are_used_and_says_so_in_the_journal(
    live: tuple[Path, Custodians], capsys: pytest.CaptureFixture[str]
) -> None:
    root, people = live
    assert _activate(root, _typed(people, ("erin", "carol")), "--operations", "1").returncode == 0
    assert main(["--workspace", str(root), "crl", "--ca", "s1sp-issuing", "--by", "bob"]) == 0
    assert main(["--workspace", str(root), "crl", "--ca", "s1sp-issuing", "--by", "bob"]) == 2
    assert "is not activated" in capsys.readouterr().err
    for _ in range(50):
        if _events(root, Event.TOKEN_ACTIVATION_ENDED):
            break
        __import__("time").sleep(0.1)
    (ended,) = _events(root, Event.TOKEN_ACTIVATION_ENDED)
    assert (ended["reason"], ended["operations"]) == ("operations", 1)


def test_a_killed_session_is_journalled_as_gone(live: tuple[Path, Custodians]) -> None:
    root, people = live
    assert _activate(root, _typed(people)).returncode == 0
    (started,) = _events(root, Event.TOKEN_ACTIVATED)
    os.kill(int(started["pid"]), 9)  # type: ignore[arg-type]
    for _ in range(50):
        if not (root / "run" / "token.sock").exists() or activation.status(_open(root)) is None:
            break
        __import__("time").sleep(0.1)
    assert activation.status(_open(root)) is None
    (ended,) = _events(root, Event.TOKEN_ACTIVATION_ENDED)
    assert ended["reason"] == "gone (not journalled by the session)"


def test_a_live_workspace_takes_no_pin_from_the_environment_and_runs_no_ceremony_unattended(
    live: tuple[Path, Custodians], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, people = live
    monkeypatch.setenv(PIN_ENV, "1234")
    ws = _open(root)
    with pytest.raises(TokenError, match="is not activated"):
        ws.key_store  # noqa: B018
    ws.close()
    approve(root, CEREMONIES / "key-backup.yaml")
    with pytest.raises(ConfigError, match="is a live workspace: its ceremonies are run attended"):
        procedures.run(CEREMONIES / "key-backup.yaml", root, console=Unattended(_open(root)))


def test_notebook_40_publishes_on_a_live_workspace_only_while_its_custodians_have_it_activated(
    live: tuple[Path, Custodians], tmp_path: Path
) -> None:
    from ceremony.reporting.notebooks import notebooks_dir, run_notebook

    root, people = live
    notebook = notebooks_dir() / "40-revoke-and-publish-crl.ipynb"
    params = {"workspace": str(root), "publish_arl": False}
    with pytest.raises(CeremonyError, match=f"token '{TOKEN}' is not activated"):
        run_notebook(notebook, params, reports_dir=tmp_path / "reports", progress=False)
    assert _activate(root, _typed(people)).returncode == 0
    run = run_notebook(notebook, params, reports_dir=tmp_path / "reports", progress=False)
    text = run.executed.read_text()
    assert f"token '{TOKEN}' activated (session " in text and "CRL 1 of s1sp-issuing" in text
    assert not any(c in text for held in people.shares.values() for c in held.values())


def test_a_wrong_environment_pin_says_it_overrode_the_deposited_shares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial workspace opens its token from the shares its unattended token-init deposited; a wrong
    CEREMONY_TOKEN_PIN takes precedence, and its refusal says so (once it said only "PIN incorrect")."""
    from tests.support.ceremony_files import run

    if find_softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    root = tmp_path / "ws"
    init_workspace(root, key_store="pkcs11", token_label=TOKEN, initialise_token=False, purpose="test").close()
    write_register(root)
    run(root, CEREMONIES / "token-init.yaml")
    assert (root / "secrets" / "shares" / f"{TOKEN}.user-pin").is_dir()
    monkeypatch.setenv(PIN_ENV, "not-the-pin-0000")
    ws = _open(root)
    with pytest.raises(TokenError) as err:
        ws.key_store  # noqa: B018
    ws.close()
    assert err.value.message == (
        f"token refused to open a session on token {TOKEN!r}: PIN incorrect (the PIN came from {PIN_ENV}, which "
        f"overrode the shares deposited in secrets/shares/{TOKEN}.user-pin/; unset {PIN_ENV} or correct it)"
    )
    assert "not-the-pin-0000" not in err.value.message
    monkeypatch.delenv(PIN_ENV)
    ws = _open(root)
    assert ws.key_store.labels() is not None  # the deposited shares open it
    ws.close()
