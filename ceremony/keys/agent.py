"""The activation session: one process holds the token's logged-in session for a bounded time and signs for
the daily work (issue, revoke, CRL), so that no PIN rests on a disk or in an environment.

Custodians present their PIN shares once (``ceremony activate``); the PIN they rebuild goes to the session
process through a pipe, never through a file, an argument or a variable. The process logs in, listens on a
Unix socket (in a 0700 directory, refused to any other user: ``SO_PEERCRED``) and does four things for its
clients: read a key's public half, read its attributes, list the labels, sign. It never hands out the PIN
and cannot generate, wrap, unwrap or destroy a key (those are a ceremony's, which activates the token
itself). It ends at its deadline, when its operations are used up, or when an officer ends it; whoever
started it journals that (``ceremony.record.activation_session``, started by ``ceremony.procedures.activation``).

A client is a :class:`AgentKeyStore`: a key store whose keys are the token key classes of
:mod:`ceremony.keys.pkcs11`, their signatures made in the session process. Each process (a forked batch
worker too) opens its own connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import socketserver
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import TokenError
from ceremony.keys.store import KeyAttributes
from ceremony.model.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm

#: Unix socket paths are limited to 108 bytes (sun_path); longer workspace paths use the runtime directory.
_SUN_PATH_MAX = 100
#: A request or answer is one JSON line of at most this many bytes (a signature input is a digest or a TBS).
_LINE_MAX = 1 << 20
_CONNECT_TIMEOUT = 5.0


def socket_path(root: Path) -> Path:
    """Where the activation session of the workspace at ``root`` listens."""
    local = root / "run" / "token.sock"
    if len(str(local).encode()) <= _SUN_PATH_MAX:
        return local
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"ceremony-{os.getuid()}" / f"{digest}.sock"


def _private_directory(directory: Path) -> None:
    """A 0700 directory of this user's (an existing one that is a link, or another's, is refused)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise TokenError(f"{directory} must be a directory of this user's, mode 0700, for the activation socket")


@dataclass(frozen=True)
class Status:
    """What a running session says of itself (nothing secret)."""

    session: str
    token_label: str
    expires: str
    seconds_left: int
    operations_left: int


# --- the session process's side -----------------------------------------------------------------------------
class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False
    session: Session


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        creds = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            return  # another user's process: not even an answer
        while True:
            line = self.rfile.readline(_LINE_MAX + 1)
            if not line:
                return
            if len(line) > _LINE_MAX:
                self._answer({"error": "request too long"})
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError
            except ValueError:
                self._answer({"error": "not a request"})
                return
            self._answer(self.server.session.answer(request))

    def _answer(self, answer: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(answer).encode() + b"\n")
        self.wfile.flush()


class Session:
    """The session process's state: the logged-in store, the deadline and the operations left.

    ``store`` is a :class:`ceremony.keys.pkcs11.Pkcs11KeyStore` (anything with its ``load``, ``attributes``,
    ``labels`` and ``_sign``). ``deadline`` is a :func:`time.monotonic` reading.
    """

    def __init__(
        self,
        store: Any,
        *,
        session: str,
        token_label: str,
        expires: str,
        deadline: float,
        operations: int,
        monotonic: Callable[[], float],
    ) -> None:
        self.store, self.session, self.token_label, self.expires = store, session, token_label, expires
        self.deadline, self.operations_left, self._monotonic = deadline, operations, monotonic
        self.used = 0
        self.ended: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def end(self, reason: str) -> None:
        with self._lock:
            if self.ended is None:
                self.ended = reason
        self._done.set()

    def wait(self) -> str:
        """Block until the session ends; returns why (expired, operations, ended)."""
        while not self._done.wait(timeout=max(0.0, min(1.0, self.deadline - self._monotonic()))):
            if self._monotonic() >= self.deadline:
                self.end("expired")
        assert self.ended is not None
        return self.ended

    def status(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "token_label": self.token_label,
            "expires": self.expires,
            "seconds_left": max(0, int(self.deadline - self._monotonic())),
            "operations_left": self.operations_left,
        }

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        with self._lock:
            if self.ended is not None or self._monotonic() >= self.deadline:
                self.ended = self.ended or "expired"
                self._done.set()
                return {"error": f"the activation session of token {self.token_label!r} has ended ({self.ended})"}
            try:
                if op == "status":
                    return self.status()
                if op == "end":
                    self.ended = "ended"
                    self._done.set()
                    return {"ended": True}
                label = str(request.get("label", ""))
                if op == "labels":
                    return {"labels": self.store.labels()}
                if op == "public":
                    public = self.store.load(label).public_key()
                    der = public.public_bytes(
                        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                    return {"public_key": der.hex()}
                if op == "attributes":
                    return {"attributes": self.store.attributes(label).__dict__}
                if op == "sign":
                    return self._sign(label, request)
            except TokenError as exc:
                return {"error": exc.message}
            return {"error": f"the activation session does not do {op!r}"}

    def _sign(self, label: str, request: dict[str, Any]) -> dict[str, Any]:
        from pkcs11 import MGF, Mechanism

        if self.operations_left <= 0:
            self.ended = "operations"
            self._done.set()
            return {"error": f"the activation session of token {self.token_label!r} has used its operations"}
        try:
            data = bytes.fromhex(str(request["data"]))
            mechanism = Mechanism(int(request["mechanism"]))
            raw = request.get("param")
            param = None if raw is None else (Mechanism(int(raw[0])), MGF(int(raw[1])), int(raw[2]))
        except (KeyError, ValueError, TypeError, IndexError):
            return {"error": "not a signing request"}
        signature = self.store._sign(label, data, mechanism, param)
        self.operations_left -= 1
        self.used += 1
        if self.operations_left == 0:
            self.ended = "operations"
            self._done.set()
        return {"signature": signature.hex()}


def serve(session: Session, path: Path, ready: Callable[[], None]) -> str:
    """Listen at ``path`` until the session ends; ``ready`` is called once the socket accepts. Returns why
    the session ended. The socket is removed at the end."""
    _private_directory(path.parent)
    if path.is_symlink() or path.exists():
        if _alive(path):
            raise TokenError(f"an activation session is already listening at {path}")
        path.unlink()
    old = os.umask(0o177)
    try:
        server = _Server(str(path), _Handler)
    finally:
        os.umask(old)
    server.session = session
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)  # ends promptly
    thread.start()
    try:
        ready()
        return session.wait()
    finally:
        server.shutdown()
        server.server_close()
        path.unlink(missing_ok=True)


# --- the clients' side ------------------------------------------------------------------------------------
def _alive(path: Path) -> bool:
    try:
        _Connection(path).call({"op": "status"})
    except TokenError:
        return False
    return True


class _Connection:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        try:
            info = os.lstat(path.parent)
        except OSError:
            raise TokenError(f"no activation session answers at {path}") from None
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            # Another user's (or a shared) directory: whatever listens there is not this user's session.
            raise TokenError(f"{path.parent} is not a private directory of this user's; its socket is not trusted")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(_CONNECT_TIMEOUT)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise TokenError(
                f"no activation session answers at {path} ({exc.strerror or type(exc).__name__})"
            ) from None
        self.sock.settimeout(None)
        self.reader = self.sock.makefile("rb")

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
            line = self.reader.readline(_LINE_MAX + 1)
        except OSError as exc:
            raise TokenError(f"the activation session at {self.path} went away ({type(exc).__name__})") from None
        if not line:
            raise TokenError(f"the activation session at {self.path} ended")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise TokenError(str(answer["error"]))
        return answer

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def status(path: Path) -> Status | None:
    """The running session's status, or None when none answers at ``path``."""
    try:
        connection = _Connection(path)
    except TokenError:
        return None
    try:
        answer = connection.call({"op": "status"})
    except TokenError:
        return None
    finally:
        connection.close()
    return Status(**answer)


def end(path: Path) -> bool:
    """Ask the session at ``path`` to end; False when none was running."""
    try:
        connection = _Connection(path)
    except TokenError:
        return False
    try:
        connection.call({"op": "end"})
    except TokenError:
        return False
    finally:
        connection.close()
    return True


class AgentKeyStore:
    """The workspace's CA keys through its activation session: sign, read public keys and attributes, list.

    Everything a ceremony does with keys (generate, wrap, unwrap, destroy, symmetric keys) is refused: a
    ceremony activates the token itself, with the custodians in the room.
    """

    kind: Literal["pkcs11", "software"] = "pkcs11"

    def __init__(self, path: Path, token_label: str) -> None:
        self.path, self.token_label = path, token_label
        self._connection: _Connection | None = None
        self._call({"op": "status"})

    def __repr__(self) -> str:
        return f"AgentKeyStore(token_label={self.token_label!r}, socket={str(self.path)!r})"

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._connection is None or self._connection.pid != os.getpid():
            self._connection = _Connection(self.path)  # a forked worker opens its own
        return self._connection.call(request)

    def load(self, label: str) -> CAPrivateKey:
        from ceremony.keys.pkcs11 import TokenECPrivateKey, TokenRSAPrivateKey

        public = serialization.load_der_public_key(
            bytes.fromhex(self._call({"op": "public", "label": label})["public_key"])
        )
        if isinstance(public, ec.EllipticCurvePublicKey):
            return TokenECPrivateKey(self, label, public)  # type: ignore[arg-type]
        if isinstance(public, rsa.RSAPublicKey):
            return TokenRSAPrivateKey(self, label, public)  # type: ignore[arg-type]
        raise TokenError(f"key {label!r} has an unsupported type")

    def _sign(self, label: str, data: bytes, mechanism: Any, param: Any = None) -> bytes:
        wire = None if param is None else [int(param[0]), int(param[1]), int(param[2])]
        answer = self._call(
            {"op": "sign", "label": label, "data": data.hex(), "mechanism": int(mechanism), "param": wire}
        )
        return bytes.fromhex(answer["signature"])

    def attributes(self, label: str) -> KeyAttributes:
        return KeyAttributes(**self._call({"op": "attributes", "label": label})["attributes"])

    def labels(self) -> list[str]:
        return [str(label) for label in self._call({"op": "labels"})["labels"]]

    def status(self) -> Status:
        return Status(**self._call({"op": "status"}))

    def close(self) -> None:
        if self._connection is not None and self._connection.pid == os.getpid():
            self._connection.close()
        self._connection = None

    def __reduce__(self) -> NoReturn:
        raise TypeError("an AgentKeyStore is a connection; forked workers inherit it and connect afresh")

    # --- what only a ceremony does ---------------------------------------------------------------------
    def _refuse(self, what: str) -> NoReturn:
        raise TokenError(f"daily work cannot {what}: that is a ceremony's, which activates the token itself")

    def generate(self, label: str, algorithm: KeyAlgorithm, *, extractable: bool = False) -> CAPrivateKey:
        self._refuse("generate a key")

    def wrap(self, label: str, kek: bytes, mechanism: int) -> bytes:
        self._refuse("wrap a key")

    def unwrap(
        self,
        label: str,
        wrapped: bytes,
        kek: bytes,
        mechanism: int,
        public_key: CAPublicKey,
        *,
        extractable: bool = False,
    ) -> CAPrivateKey:
        self._refuse("unwrap a key")

    def destroy(self, label: str) -> None:
        self._refuse("destroy a key")

    def import_secret(self, label: str, value: bytes | bytearray, *, purpose: str, extractable: bool = False) -> str:
        self._refuse("import a key")

    def generate_secret(self, label: str, length: int, *, purpose: str, extractable: bool = False) -> str:
        self._refuse("generate a key")

    def secret_kcv(self, label: str) -> str:
        self._refuse("use a symmetric key")

    def secret_attributes(self, label: str) -> KeyAttributes:
        self._refuse("use a symmetric key")

    def wrap_secret(self, kek_label: str, label: str, mechanism: int) -> bytes:
        self._refuse("wrap a key")

    def unwrap_secret(
        self, kek_label: str, label: str, wrapped: bytes, mechanism: int, *, purpose: str, extractable: bool = False
    ) -> str:
        self._refuse("unwrap a key")

    def destroy_secret(self, label: str) -> None:
        self._refuse("destroy a key")
