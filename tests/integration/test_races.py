"""Races: two processes doing the same thing at once (a barrier lines them up, several trials a test), on SQLite
and on a real PostgreSQL server. The inventory admits one valid certificate per identity, a batch is leased,
and a revocation claims its certificate: one run wins, the other is refused in one line (exit 2)."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ceremony.record.workspace import Workspace, init_workspace
from tests.support.ceremony_files import device_list, write_register
from tests.support.postgres import ENGINES

pytestmark = pytest.mark.slow
TRIALS = 10


@pytest.fixture
def workspace(tmp_path: Path, database: str | None) -> Path:
    """A software-store workspace with the S1SP root and issuing CA, closed (the racers open it themselves)."""
    from ceremony.issue.single import create_ca

    ws = init_workspace(tmp_path / "ws", key_store="software", database=database, purpose="test")
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
    create_ca(ws, "issuing", profile_name="ss1spca-issuing", common_name="Test Issuing", approved_by="alice",
              issuer_ca="root")  # fmt: skip
    ws.close()
    write_register(tmp_path / "ws")  # the example people: bob approves issuance, alice revocations
    return tmp_path / "ws"


def _racer(root: str, commands: list[list[str]], barrier: Any, out: Any, index: int) -> None:
    """Run each command once the other racer is at the barrier too; put (index, [(exit code, stderr)])."""
    from ceremony.cli.main import main

    results = []
    for argv in commands:
        barrier.wait(timeout=120)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["--workspace", root, *argv])
        results.append((code, err.getvalue()))
    out.put((index, results))


def _race(root: Path, commands: list[list[str]]) -> list[tuple[tuple[int, str], tuple[int, str]]]:
    """Two processes run ``commands`` in step; the two outcomes of each command."""
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_racer, args=(str(root), commands, barrier, out, i)) for i in range(2)]
    for racer in racers:
        racer.start()
    found = dict(out.get(timeout=300) for _ in racers)
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    return list(zip(found[0], found[1], strict=True))


def _one_won(pair: tuple[tuple[int, str], tuple[int, str]], refusal: str) -> None:
    """Both succeeded where the second found nothing left to do, or one won and the other got one line, exit 2."""
    codes = sorted(code for code, _ in pair)
    assert codes in ([0, 0], [0, 2]), pair
    for code, err in pair:
        if code == 2:
            assert err.count("\n") == 1 and refusal in err and "Traceback" not in err, err


def _valid_per_identity(root: Path) -> Counter[tuple[str, str]]:
    ws = Workspace.open(root)
    rows = ws.inventory._execute(
        "SELECT eui64, usage FROM certificates WHERE status = 'valid' AND eui64 IS NOT NULL"
    ).fetchall()
    ws.close()
    return Counter((r[0], r[1]) for r in rows)


@pytest.mark.parametrize("database", ENGINES, indirect=True)
def test_the_same_batch_twice_at_once_is_issued_once(workspace: Path, tmp_path: Path) -> None:
    lists = [device_list(tmp_path / f"list{i}", 10, first=100 * i + 1) for i in range(3)]
    commands = [["issue", "--ca", "issuing", "--profile", "ss1sp-device", "--devices", str(path), "--approved-by",
                 "bob"] for path in lists]  # fmt: skip
    for pair in _race(workspace, commands):
        _one_won(pair, "is running in another process")
    counts = _valid_per_identity(workspace)
    assert len(counts) == 3 * 20 and set(counts.values()) == {1}
    ws = Workspace.open(workspace)
    assert ws.inventory.count() == 2 + 60  # the two CAs, and each list once
    ws.close()


@pytest.mark.parametrize("database", ENGINES, indirect=True)
def test_the_same_identity_twice_at_once_is_issued_once(workspace: Path, tmp_path: Path) -> None:
    csrs = device_list(tmp_path / "csrs", TRIALS, pem=True).parent / "csr"
    commands = []
    for n in range(1, TRIALS + 1):
        eui64 = f"{0x00DB123400000000 + n:016X}"
        commands.append(["issue", "--ca", "issuing", "--profile", "ss1sp-device", "--eui64", eui64, "--usage", "ds",
                         "--approved-by", "bob", str(csrs / f"{eui64}-ds.pem")])  # fmt: skip
    for pair in _race(workspace, commands):
        assert sorted(code for code, _ in pair) == [0, 2], pair
        _one_won(pair, "already has a valid ds certificate")
    counts = _valid_per_identity(workspace)
    assert len(counts) == TRIALS and set(counts.values()) == {1}
    # Every certificate file has its row: the loser wrote none.
    files = sorted((workspace / "artifacts" / "certificates" / "issuing").glob("*.pem"))
    assert len(files) == TRIALS


@pytest.mark.parametrize("database", ENGINES, indirect=True)
def test_two_revocations_of_one_serial_one_wins(workspace: Path, tmp_path: Path) -> None:
    from ceremony.issue.batch import issue_batch

    ws = Workspace.open(workspace)
    issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", approved_by="bob", progress=False,
                devices=device_list(tmp_path / "list", TRIALS // 2))  # fmt: skip
    serials = [r[0] for r in ws.inventory._execute(
        "SELECT serial FROM certificates WHERE profile = 'ss1sp-device' ORDER BY serial")]  # fmt: skip
    ws.close()
    commands = [["revoke", serial, "--ca", "issuing", "--reason", "keyCompromise", "--requested-by", "bob",
                 "--approved-by", "alice"] for serial in serials]  # fmt: skip
    for pair in _race(workspace, commands):
        assert sorted(code for code, _ in pair) == [0, 2], pair
        _one_won(pair, "already revoked")
    ws = Workspace.open(workspace)
    revoked = ws.inventory._execute("SELECT COUNT(*) FROM revocations").scalar_one()
    journalled = [e for e in ws.journal.entries() if e["event"] == "certificate.revoke"]
    ws.close()
    assert revoked == len(journalled) == len(serials)
