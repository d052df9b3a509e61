"""Hostile input through the command line (DESIGN principle 9, issue J item 8): every case exits 2 with one line
on stderr naming what is wrong, quotes nothing of the file, changes nothing, and ends in bounded time and memory.

Each call runs in a thread with a timeout (a hang fails the test instead of hanging the suite); the /dev/zero
cases run in a child process limited to 1 GiB of address space (RLIMIT_AS), so reading the device whole fails
the test instead of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ceremony.cli.main import main

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
CEREMONY = DATA / "ceremonies" / "root-ca.yaml"
NOTEBOOK = REPO / "notebooks" / "10-root-ca-ceremony.ipynb"
#: A first line that looks like /etc/shadow's: it must never reach stderr.
SECRET = "root:$6$Zq8sEcReTsAlT$hUnTeR2-not-for-your-eyes-0123456789abcdef:19000:0:99999:7:::"
TIMEOUT = 10.0
MEMORY = 1 << 30
#: "billion laughs": nine aliases of nine aliases, nine levels down (9**9 strings once expanded).
BOMB = "lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n" for i in range(1, 10)
)
DEEP_LIST = "[" * 50_000 + "]" * 50_000 + "\n"
DEEP_MAP = "{a: " * 50_000 + "1" + "}" * 50_000 + "\n"


# --- the workspace and what "nothing changed" means ----------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ceremony.record.workspace import init_workspace

    root = tmp_path_factory.mktemp("hostile") / "ws"
    init_workspace(root, key_store="software", purpose="test").close()
    shutil.copy(DATA / "people.yaml", root / "people.yaml")
    return root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a test workspace with its own register; hostile files go in ``tmp_path / "in"``."""
    (tmp_path / "in").mkdir()
    return Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))


def _state(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``root`` (files by size and mtime, links and FIFOs by kind): what a refusal must keep.
    SQLite's -wal and -shm side files come and go with any reader (this test's own included); ``_rows``
    compares the inventory's content."""
    state: dict[str, tuple[int, int]] = {}
    for path in sorted(root.rglob("*")):
        if path.name.endswith(("-wal", "-shm")):
            continue
        status = path.lstat()
        state[str(path.relative_to(root))] = (status.st_mode, status.st_size if path.is_file() else 0)
        if path.is_file() and not path.is_symlink():
            state[str(path.relative_to(root))] += (status.st_mtime_ns,)  # type: ignore[assignment]
    return state


def _rows(ws: Path) -> dict[str, int]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(ws / "inventory.sqlite")) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def _refused(stderr: str, *names: str) -> str:
    """The one line of a refusal, which names each of ``names``."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {stderr[:500]!r}"
    line = lines[0]
    assert line.startswith("ceremony: ") and "Traceback" not in line
    assert len(line) < 400, f"not a short line ({len(line)} characters)"
    for name in names:
        assert name in line, f"{name!r} not in {line!r}"
    return line


def _call(argv: list[str], capsys: pytest.CaptureFixture[str], timeout: float = TIMEOUT) -> tuple[int, str, float]:
    """``main(argv)`` in a thread, at most ``timeout`` seconds: (exit code, stderr, seconds taken)."""
    codes: list[int] = []
    raised: list[BaseException] = []

    def target() -> None:
        try:
            codes.append(main(argv))
        except BaseException as exc:  # noqa: BLE001 - reported below as the test's failure
            raised.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    took = time.monotonic() - started
    assert not thread.is_alive(), f"ceremony {' '.join(argv)} still running after {timeout} s (a hang)"
    if raised:
        raise AssertionError(f"ceremony {' '.join(argv)} raised {raised[0]!r}") from raised[0]
    return codes[0], capsys.readouterr().err, took


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _call_bounded(argv: list[str]) -> tuple[int, str]:
    """``ceremony argv`` in a child process limited to 1 GiB of address space and ``TIMEOUT`` seconds."""
    code = "import sys; from ceremony.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=TIMEOUT * 2,
        preexec_fn=_limit_memory, cwd=REPO, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


def _refuses(ws: Path, argv: list[str], capsys: pytest.CaptureFixture[str], *names: str, bounded: bool = False) -> str:
    """Run ``argv`` against ``ws``; assert exit 2, one line naming ``names``, nothing changed, no secret shown."""
    before, rows = _state(ws), _rows(ws)
    full = ["--workspace", str(ws), *argv]
    if bounded:
        rc, err = _call_bounded(full)
    else:
        rc, err, _ = _call(full, capsys)
    assert rc == 2, f"exit {rc}: {err[:500]}"
    line = _refused(err, *names)
    assert SECRET not in err and "hUnTeR2" not in err
    assert _state(ws) == before, "the refusal changed the workspace"
    assert _rows(ws) == rows
    return line


def _approve(path: Path) -> list[str]:
    return ["approve", str(path), "--by", "alice"]


def _issue(devices: Path) -> list[str]:
    return ["issue", "--ca", "issuing", "--profile", "ss1sp-device", "--devices", str(devices), "--approved-by", "bob"]


def _import(path: Path) -> list[str]:
    return ["keys", "import", str(path), "--kek", "transport", "--serves", "test"]


def _run(params: Path) -> list[str]:
    return ["run", str(NOTEBOOK), "-f", str(params)]


COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "ceremony file": _approve, "device list": _issue, "key import": _import, "parameters file": _run,
}  # fmt: skip


# --- devices and FIFOs: refused before a byte is read ----------------------------------------------------------
@pytest.mark.parametrize("what", sorted(COMMANDS))
def test_dev_zero_is_refused_in_bounded_memory(ws: Path, capsys: pytest.CaptureFixture[str], what: str) -> None:
    _refuses(ws, COMMANDS[what](Path("/dev/zero")), capsys, "/dev/zero", bounded=True)


def test_dev_zero_as_workspace_yaml_is_refused_in_bounded_memory(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "workspace.yaml").unlink()
    (ws / "workspace.yaml").symlink_to("/dev/zero")
    _refuses(ws, ["keys", "list"], capsys, "workspace.yaml", bounded=True)


@pytest.mark.parametrize("what", sorted(COMMANDS))
def test_a_fifo_is_refused_without_waiting_for_a_writer(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    fifo = tmp_path / "in" / "input.fifo"
    os.mkfifo(fifo)
    _refuses(ws, COMMANDS[what](fifo), capsys, str(fifo))


def test_a_fifo_as_workspace_yaml_is_refused(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "workspace.yaml").unlink()
    os.mkfifo(ws / "workspace.yaml")
    line = _refuses(ws, ["keys", "list"], capsys, "workspace.yaml")
    assert "regular file" in line


def test_a_fifo_as_the_register_is_refused(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "people.yaml").unlink()
    os.mkfifo(ws / "people.yaml")
    line = _refuses(ws, _approve(CEREMONY), capsys, "people.yaml")
    assert "participant register must be a regular file" in line


def test_a_database_that_is_a_device_is_refused_in_one_line(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ws / "workspace.yaml"
    config.write_text(config.read_text().replace("database: inventory.sqlite", "database: /dev/zero"))
    line = _refuses(ws, ["keys", "list"], capsys, "database: /dev/zero")
    assert line == "ceremony: database: /dev/zero is not a regular file (a SQLite inventory is a plain file)"


def test_a_directory_given_as_a_file_is_refused(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    assert "ceremony file must be a regular file" in _refuses(ws, _approve(folder), capsys, str(folder))
    assert "is not a regular file" in _refuses(ws, _issue(folder), capsys, str(folder))
    assert "wrapped-key file must be a regular file" in _refuses(ws, _import(folder), capsys, str(folder))


# --- YAML: aliases, depth, size ----------------------------------------------------------------------------
def test_a_billion_laughs_ceremony_file_is_refused_at_once_unexpanded(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in" / "laughs.yaml"
    path.write_text(BOMB)
    before = _state(ws)
    rc, err, took = _call(["--workspace", str(ws), *_approve(path)], capsys)
    assert rc == 2 and took < 1.0, f"exit {rc} after {took:.2f} s"
    line = _refused(err, str(path), "more than 100000 values (aliases counted in full)")
    assert "lol" not in line.removeprefix(f"ceremony: {path}")
    assert _state(ws) == before


@pytest.mark.parametrize("text", [DEEP_LIST, DEEP_MAP], ids=["sequences", "mappings"])
def test_50000_deep_nesting_is_refused_without_recursion(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "in" / "deep.yaml"
    path.write_text(text)
    line = _refuses(ws, _approve(path), capsys, str(path))
    column = 65 if text.startswith("[") else 257  # the first opener past the bound
    assert line == f"ceremony: {path}: line 1, column {column}: nested more than 64 levels deep"


def test_a_billion_laughs_register_is_refused(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "people.yaml").write_text("schema_version: 1\n" + BOMB)
    _refuses(ws, _approve(CEREMONY), capsys, "people.yaml", "aliases counted in full")


@pytest.mark.parametrize("text", [BOMB, DEEP_MAP], ids=["laughs", "deep"])
def test_a_hostile_workspace_yaml_is_refused(ws: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    config = ws / "workspace.yaml"
    config.write_text(config.read_text() + text)
    _refuses(ws, ["keys", "list"], capsys, "workspace.yaml")


def test_a_200_mb_ceremony_file_is_refused_by_its_size_at_once(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in" / "huge.yaml"
    with path.open("wb") as fh:
        fh.write(CEREMONY.read_bytes())
        fh.truncate(200_000_000)  # sparse: the size is there without writing 200 MB
    started = time.monotonic()
    line = _refuses(ws, _approve(path), capsys, str(path))
    assert time.monotonic() - started < 2.0
    assert line.endswith("the ceremony file is 200000000 bytes; the limit is 1048576")


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "empty document"),
        (b"# nothing but a comment\n", "empty document"),
        (bytes(range(256)) * 4, "not UTF-8 text (byte 128 cannot be decoded)"),
        ("type: root-ca\n".encode("utf-16"), "not UTF-8 text (byte 0 cannot be decoded)"),
        (b"type: root-ca\x00\n", "not valid YAML (unacceptable character #x0000"),
        (SECRET.encode() + b"\n", "type must be one of"),
        (b"- a\n- list\n", "type must be one of"),
    ],
    ids=["empty", "comment-only", "binary", "utf-16", "nul", "shadow-like", "a-list"],
)
def test_junk_as_a_ceremony_file_is_refused(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, problem: str
) -> None:
    path = tmp_path / "in" / "junk.yaml"
    path.write_bytes(data)
    _refuses(ws, _approve(path), capsys, str(path), problem)


def test_a_ceremony_file_through_a_link_is_refused_unread(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "in" / "shadow"
    secret.write_text(SECRET + "\n")
    link = tmp_path / "in" / "ceremony.yaml"
    link.symlink_to(secret)
    _refuses(ws, _approve(link), capsys, str(link))


# --- the participant register --------------------------------------------------------------------------------
def test_a_workspace_without_a_register_says_so_and_never_uses_the_example(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CEREMONY_REGISTER", raising=False)
    (ws / "people.yaml").unlink()
    line = _refuses(ws, _approve(CEREMONY), capsys, f"{ws / 'people.yaml'}: no participant register", "--register")
    assert str(DATA / "people.yaml") in line  # where to start one from, not a fallback


def test_the_register_named_in_the_environment_is_still_used(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws / "people.yaml").unlink()
    monkeypatch.setenv("CEREMONY_REGISTER", str(DATA / "people.yaml"))
    rc, err, _ = _call(["--workspace", str(ws), *_approve(CEREMONY)], capsys)
    assert rc == 0, err
    approvals = [json.loads(line) for line in (ws / "journal.jsonl").read_text().splitlines()]
    assert approvals[-1]["event"] == "ceremony.approve"


# --- device lists ----------------------------------------------------------------------------------------------
def test_a_300_mb_single_line_device_list_is_refused_at_its_first_line(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in" / "devices.csv"
    with path.open("wb") as fh:
        fh.write(b"eui64,usage,csr")
        fh.truncate(300_000_000)  # sparse, no newline: one 300 MB line
    started = time.monotonic()
    line = _refuses(ws, _issue(path), capsys, str(path))
    assert time.monotonic() - started < 3.0
    assert line == f"ceremony: {path}: line 1 is over 8192 bytes; not a device list"


def test_a_device_list_linked_to_a_secret_file_never_shows_it(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "in" / "shadow"
    secret.write_text(SECRET + "\ndaemon:*:19000:0:99999:7:::\n")
    link = tmp_path / "in" / "devices.csv"
    link.symlink_to(secret)
    line = _refuses(ws, _issue(link), capsys, str(link))
    assert "a link is not followed" in line


def test_a_secret_file_named_as_a_device_list_is_refused_by_column_not_content(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "in" / "shadow"
    secret.write_text(SECRET + "\n")
    line = _refuses(ws, _issue(secret), capsys, str(secret))
    assert line == f"ceremony: {secret}: the header must start eui64,usage,csr (column 1 is not eui64)"


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "the device list is empty"),
        (b"eui64,usage,csr\n", "the device list has no rows"),
        ("eui64,usage,csr\n00DB123400000001,ds,a.der\n".encode("utf-16"), "(column 1 is not eui64)"),
        (bytes(range(256)) * 4, "(column 1 is not eui64)"),
        (b"eui64,usage,path\n00DB123400000001,ds,a.der\n", "(column 3 is not csr)"),
        (b'eui64,usage,csr\n00DB123400000001,ds,"' + b"x" * 5000 + b'"\n', "line 2 has a field over 4096"),
        (
            b'eui64,usage,csr\n00DB123400000001,ds,"' + b"x" * 8000 + b"\n" * 20 + b"y" * 8000 + b"\n" * 20,
            "has a field over 4096 characters",
        ),
        (b'eui64,usage,csr\n"' + (b"z" * 8000 + b"\n") * 40, "not valid CSV (field larger than field limit"),
    ],
    ids=["empty", "header-only", "utf-16", "binary", "wrong-header", "long-field", "long-quoted-field", "unterminated"],
)
def test_a_malformed_device_list_is_refused_naming_the_line(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, problem: str
) -> None:
    path = tmp_path / "in" / "devices.csv"
    path.write_bytes(data)
    line = _refuses(ws, _issue(path), capsys, str(path), problem)
    assert "xxxx" not in line and "zzzz" not in line


# --- CSRs and key files -----------------------------------------------------------------------------------------
def _single(csr: Path) -> list[str]:
    return ["issue", "--ca", "issuing", "--profile", "ss1sp-device", "--eui64", "00DB123400000001", "--usage", "ds",
            "--approved-by", "bob", str(csr)]  # fmt: skip


def test_a_huge_csr_is_refused_by_its_size(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in" / "huge.csr"
    with path.open("wb") as fh:
        fh.truncate(50_000_000)
    line = _refuses(ws, _single(path), capsys, str(path))
    assert line.endswith("CSR file is 50000000 bytes; the limit is 1048576 (1 MiB)")


@pytest.mark.parametrize("kind", ["fifo", "dev-null"])
def test_a_csr_that_is_not_a_regular_file_is_refused(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "in" / "req.csr"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/null")
    assert _refuses(ws, _single(path), capsys, str(path)).endswith("not a regular file")


def _tlv(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def deep_der_csr(levels: int) -> bytes:
    """A CSR (empty subject, P-256 key) whose one attribute holds ``levels`` nested SEQUENCEs."""
    from asn1crypto import csr as asn1_csr
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    signed = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    request = asn1_csr.CertificationRequest.load(signed.public_bytes(serialization.Encoding.DER))
    info = request["certification_request_info"]
    deep = b""
    for _ in range(levels):
        deep = _tlv(0x30, deep)
    attribute = _tlv(0x30, bytes.fromhex("060a0992268993f22c640101") + _tlv(0x31, deep))
    head = info["version"].dump() + info["subject"].dump() + info["subject_pk_info"].dump()
    body = _tlv(0x30, head + _tlv(0xA0, attribute))
    return _tlv(0x30, body + request["signature_algorithm"].dump() + request["signature"].dump())


def test_deeply_nested_json_or_der_as_a_csr_is_refused(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested_json = tmp_path / "in" / "nested.csr"
    nested_json.write_text("[" * 100_000 + "]" * 100_000)
    nested_der = tmp_path / "in" / "nested-der.csr"
    nested_der.write_bytes(deep_der_csr(20_000))
    for path in (nested_json, nested_der):
        assert "not a DER-encoded PKCS#10 CSR" in _refuses(ws, _single(path), capsys, str(path))


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"[" * 8_000 + b"]" * 8_000, "not a wrapped-key file (RecursionError)"),
        (b"\xff\xfe{\x00}\x00", "not a wrapped-key file (UnicodeDecodeError)"),
        (b'{"format": "s1spki-wrapped-key/1"}', "label, algorithm, purpose, kcv, kek_kcv, wrapped must be given"),
        (b"x" * 20_000, "the wrapped-key file is 20000 bytes; the limit is 16384"),
    ],
    ids=["deep-json", "utf-16", "fields-missing", "too-big"],
)
def test_a_hostile_key_import_file_is_refused(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, problem: str
) -> None:
    path = tmp_path / "in" / "key.json"
    path.write_bytes(data)
    _refuses(ws, _import(path), capsys, str(path), problem)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_inventory_import_refuses_a_fifo_or_device(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "in" / "certs.pem"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    line = _refuses(ws, ["inventory", "import", "--by", "bob", str(path)], capsys, str(path))
    assert line.endswith("not a regular file or a directory; nothing imported")
