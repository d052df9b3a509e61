"""The activation session process: lean to start, and it refuses what it cannot serve before saying "ready".

Its whole life on a token (login, journalled start and end, serving, expiry) is tested through ``activate`` in
tests/procedures/test_activation.py and by the lifetime simulation; here, what the process itself promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ceremony.record.workspace import init_workspace


def _session(root: Path, request: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ceremony.record.activation_session", str(root)],
        input=request.decode(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_it_starts_without_the_procedures_the_notebooks_or_sqlalchemy() -> None:
    probe = (
        "import sys, ceremony.record.activation_session; "
        "print(sorted({m.split('.')[0] if not m.startswith('ceremony.') else '.'.join(m.split('.')[:2]) "
        "for m in sys.modules} & {'ceremony.procedures', 'ceremony.reporting', 'sqlalchemy', 'pandas', "
        "'nbformat', 'papermill'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_a_software_workspace_or_a_malformed_request_is_refused_in_one_line_before_ready(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    ws.close()
    request = json.dumps({"pin": "0000", "session": "s", "custodians": [], "shares": {}, "m": 2, "minutes": 1,
                          "operations": 1}).encode() + b"\n"  # fmt: skip
    refused = _session(tmp_path / "ws", request)
    assert (refused.returncode, refused.stdout.splitlines()) == (
        2,
        [
            f"error {tmp_path / 'ws'}: a software key store is opened with its passphrase (trial workspaces); "
            "activation is for a PKCS#11 token"
        ],
    )
    malformed = _session(tmp_path / "ws", b"not json\n")
    assert (malformed.returncode, malformed.stdout) == (2, "error the activation request was malformed\n")
    assert "0000" not in refused.stdout + refused.stderr
