"""Shared fixtures: vectors from ../shared, SoftHSM and PostgreSQL availability (a skip locally, a failure
in CI), and the inventory's engine (SQLite by default; the inventory tests run on both)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ceremony.clock import PIN_VARIABLE, PinnedClock, pin
from ceremony.keys.pkcs11 import find_softhsm_module
from tests.support import postgres
from tests.support.processes import run_forked

REPO = Path(__file__).resolve().parents[1]
#: The time the suite starts at: the first day the shipped ceremony files name (data/ceremonies/*.yaml).
SUITE_TIME = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
#: Pinned once for the whole session, before any fixture runs (module- and session-scoped ones too), so that
#: the suite's clock only moves forward: it reads SUITE_TIME when the session starts, whatever the machine's
#: date, and reaches notebook kernels, pool workers and forked tests through the environment.
_SESSION_PIN = pin(SUITE_TIME).to_environment()
os.environ[PIN_VARIABLE] = _SESSION_PIN
SHARED_VECTORS = REPO.parent / "shared" / "vectors" / "smki-test"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("hsm") and find_softhsm_module() is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is not installed, and CI must run every HSM test (.ci/run installs softhsm2)")
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    if item.get_closest_marker("browser"):
        from tests.support.browser import unavailable

        why = unavailable()
        if why:
            _unavailable("browser", why)


def _unavailable(what: str, why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI must run every {what} test (.ci/run installs it)")
    pytest.skip(why)


_PG: dict[str, object] = {"server": None, "passed": 0, "owner": os.getpid()}


def _start_postgres() -> postgres.PostgresServer:
    """The session's one cluster, started in the test process itself (never in a forked child, which
    would leave it behind); stopped when the session finishes."""
    if _PG["server"] is None:
        why = postgres.unavailable()
        if why:
            _unavailable("PostgreSQL", why)
        assert os.getpid() == _PG["owner"], "the PostgreSQL cluster is started by the test process, not a child"
        _PG["server"] = postgres.PostgresServer().start()
    return _PG["server"]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def postgres_server() -> postgres.PostgresServer:
    """One throwaway PostgreSQL cluster on 127.0.0.1 for the session (see tests/support/postgres.py)."""
    return _start_postgres()


def pytest_sessionstart(session: pytest.Session) -> None:
    # The session's temporary root exists before any test forks, so forked children share it (built_once).
    session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session) -> None:
    server = _PG["server"]
    if server is not None and os.getpid() == _PG["owner"]:
        server.stop()  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A test marked ``hsm`` runs whole in a forked child: a process uses one SoftHSM2 configuration
    (ceremony.keys.pkcs11), and each such test makes a token directory of its own."""
    if item.get_closest_marker("hsm") is None or find_softhsm_module() is None:
        return None
    if item.get_closest_marker("lifetime") is not None:
        return None  # it waits for a simulation running in a process of its own (tests/lifetime/conftest.py)
    if item.get_closest_marker("postgres") is not None:
        _start_postgres()  # here, so that the child inherits it
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in run_forked(item, nextitem):
        item.ihook.pytest_runtest_logreport(report=report)
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str | None:
    """The inventory's engine: SQLite (None) unless parametrised (indirectly, or by a module overriding
    this fixture) with ``tests.support.postgres.ENGINES`` to run on SQLite and on a real PostgreSQL server."""
    return postgres.database_for(request) if hasattr(request, "param") else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _PG["passed"] = int(_PG["passed"]) + 1  # type: ignore[call-overload]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    server = _PG["server"]
    if server is not None:
        terminalreporter.write_line(
            f"PostgreSQL: {_PG['passed']} inventory tests passed against a real server "
            f"({server.version}, 127.0.0.1:{server.port})"  # type: ignore[attr-defined]
        )


@pytest.fixture
def suite_clock() -> PinnedClock:
    """The clock the suite pins (the one the environment carries to child processes)."""
    return PinnedClock.parse(os.environ[PIN_VARIABLE])


@pytest.fixture
def smki_vectors() -> Path:
    """The real DCC test certificates in ../shared (never copied into the project)."""
    if not SHARED_VECTORS.is_dir():
        pytest.skip(f"real SMKI test vectors not found at {SHARED_VECTORS}")
    return SHARED_VECTORS


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    # No test may see a developer's PIN, workspace or SoftHSM configuration.
    for name in ("CEREMONY_TOKEN_PIN", "CEREMONY_SOFTWARE_PASSPHRASE", "CEREMONY_WORKSPACE", "SOFTHSM2_CONF"):
        monkeypatch.delenv(name, raising=False)
    # Every test runs on the suite's clock (pinned once, at the session's start), whatever it changed.
    monkeypatch.setenv(PIN_VARIABLE, _SESSION_PIN)
    monkeypatch.chdir(tmp_path)
    yield
    # After every test: no secret outside secrets/ and share-cards/ of any workspace it left behind.
    if request.node.get_closest_marker("plants_secrets") is None:
        from tests.support.secret_scan import scan

        leaks = scan(tmp_path)
        assert not leaks, f"secrets outside their resting places: {leaks[:5]}"


@pytest.fixture(params=["software", pytest.param("pkcs11", marks=pytest.mark.hsm)])
def key_store_kind(request: pytest.FixtureRequest) -> str:
    """Both key stores: the software store everywhere, SoftHSM2 where installed (always in CI)."""
    return str(request.param)


@pytest.fixture
def ca_workspace(tmp_path: Path, key_store_kind: str, database: str | None):  # type: ignore[no-untyped-def]
    """A workspace with the S1SP root and issuing CA (P-256), in the parametrised key store, and the example
    participant register as its own (bob: operator and RA officer; alice and victor: approvers)."""
    from ceremony.issue.single import create_ca
    from ceremony.record.workspace import init_workspace
    from tests.support.ceremony_files import write_register

    ws = init_workspace(tmp_path / "ws", key_store=key_store_kind, database=database, purpose="test")  # type: ignore[arg-type]
    write_register(ws.root)
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
    create_ca(
        ws, "issuing", profile_name="ss1spca-issuing", common_name="Test Issuing", approved_by="alice", issuer_ca="root"
    )
    yield ws
    ws.close()


@pytest.fixture
def tsa(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A time-stamping authority on 127.0.0.1 for one test (tests/support/tsa.py), stopped after it."""
    from tests.support.tsa import LocalTsa, make_tsa

    local = LocalTsa(make_tsa(tmp_path_factory.mktemp("tsa"))).start()
    yield local
    local.stop()
