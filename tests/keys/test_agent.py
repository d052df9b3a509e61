"""The activation session: bounded by time and operations, signs for its clients, refuses a ceremony's work."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from ceremony.errors import TokenError
from ceremony.keys import agent
from ceremony.keys.store import KeyAttributes


class SoftToken:
    """What the session process needs of a logged-in token, in memory: raw ECDSA over a digest, as SoftHSM."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signed = 0

    def _sign(self, label: str, data: bytes, mechanism: Any, param: Any = None) -> bytes:
        if label != "ca-key":
            raise TokenError(f"no private key labelled {label!r}")
        self.signed += 1
        r, s = utils.decode_dss_signature(self.key.sign(data, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def load(self, label: str) -> Any:
        self._sign(label, bytes(32), None)
        self.signed -= 1
        return self.key

    def attributes(self, label: str) -> KeyAttributes:
        return KeyAttributes(label, True, False, True, True, True, False)

    def labels(self) -> list[str]:
        return ["ca-key"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _session(store: Any, clock: Clock, *, seconds: float = 60, operations: int = 3) -> agent.Session:
    return agent.Session(
        store, session="s1", token_label="t", expires="2026-12-01T11:00:00+00:00", deadline=clock.now + seconds,
        operations=operations, monotonic=clock,
    )  # fmt: skip


def _sign_request(data: bytes = bytes(32)) -> dict[str, Any]:
    return {"op": "sign", "label": "ca-key", "data": data.hex(), "mechanism": 0x1041, "param": None}


def test_the_session_signs_until_its_operations_are_used_up() -> None:
    store, clock = SoftToken(), Clock()
    session = _session(store, clock, operations=2)
    assert "signature" in session.answer(_sign_request())
    assert session.answer({"op": "status"})["operations_left"] == 1
    assert "signature" in session.answer(_sign_request())
    assert session.ended == "operations"
    assert session.answer(_sign_request()) == {"error": "the activation session of token 't' has ended (operations)"}
    assert store.signed == 2
    assert session.wait() == "operations"


def test_the_session_ends_at_its_deadline() -> None:
    store, clock = SoftToken(), Clock()
    session = _session(store, clock, seconds=30)
    clock.now += 29
    assert "signature" in session.answer(_sign_request())
    clock.now += 1
    assert "has ended (expired)" in session.answer(_sign_request())["error"]
    assert session.wait() == "expired"
    assert store.signed == 1


def test_the_session_refuses_what_is_not_daily_work_and_malformed_requests() -> None:
    session = _session(SoftToken(), Clock())
    assert session.answer({"op": "wrap", "label": "ca-key"}) == {"error": "the activation session does not do 'wrap'"}
    assert session.answer({"op": "sign", "label": "ca-key", "data": "zz"}) == {"error": "not a signing request"}
    assert session.answer({"op": "public", "label": "other"}) == {"error": "no private key labelled 'other'"}
    assert session.operations_left == 3


@pytest.fixture
def served(tmp_path: Path) -> Any:
    store, clock = SoftToken(), Clock()
    session = _session(store, clock, operations=5)
    path = tmp_path / "run" / "token.sock"
    listening = threading.Event()
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(agent.serve(session, path, listening.set)), daemon=True)
    thread.start()
    assert listening.wait(10)
    yield store, session, path
    session.end("ended")
    thread.join(10)
    assert result == ["ended"]
    assert not path.exists()


def test_a_client_signs_through_the_session_and_the_signature_verifies(served: Any) -> None:
    store, session, path = served
    assert oct(os.stat(path.parent).st_mode & 0o777) == "0o700"
    client = agent.AgentKeyStore(path, "t")
    key = client.load("ca-key")
    signature = key.sign(b"to be signed", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    store.key.public_key().verify(signature, b"to be signed", ec.ECDSA(hashes.SHA256()))
    assert client.labels() == ["ca-key"]
    assert client.attributes("ca-key").extractable is False
    assert client.status().operations_left == 4
    with pytest.raises(TokenError, match="daily work cannot wrap a key: that is a ceremony's"):
        client.wrap("ca-key", bytes(32), 0x210A)
    with pytest.raises(TokenError, match="daily work cannot generate a key"):
        client.generate("ca-2", "ec-p256")
    with pytest.raises(TypeError, match="connection"):
        __import__("pickle").dumps(client)
    client.close()


def test_a_forked_worker_opens_its_own_connection(served: Any) -> None:
    _, session, path = served
    client = agent.AgentKeyStore(path, "t")
    pid = os.fork()
    if pid == 0:  # the worker: sign through its own connection, then leave without cleanup
        try:
            client.load("ca-key").sign(b"x", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.load("ca-key").sign(b"y", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    assert session.used == 2


def test_status_and_end_without_a_session(tmp_path: Path) -> None:
    path = tmp_path / "run" / "token.sock"
    assert agent.status(path) is None
    assert agent.end(path) is False
    with pytest.raises(TokenError, match="no activation session answers at"):
        agent.AgentKeyStore(path, "t")


def test_a_long_workspace_path_listens_in_the_runtime_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    path = agent.socket_path(deep)
    assert len(str(path)) <= 108 and path.parent.name == f"ceremony-{os.getuid()}"
    assert agent.socket_path(tmp_path) == tmp_path / "run" / "token.sock"


def test_a_socket_in_a_directory_others_can_write_is_not_trusted(tmp_path: Path) -> None:
    shared = tmp_path / "run"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(TokenError, match="is not a private directory of this user's"):
        agent.AgentKeyStore(shared / "token.sock", "t")
    assert agent.status(shared / "token.sock") is None
