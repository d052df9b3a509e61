"""`ceremony issue | lint | inventory`: exit codes, one-line errors, and rejected input changing nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.record.workspace import Workspace
from tests.support.csr_factory import BAD_CSRS, good_device_csr, good_org_csr

PROFILE_ARGS = {
    "ss1sp-device": ["--profile", "ss1sp-device", "--eui64", "00DB123456789001", "--usage", "ds"],
    "ss1sp-organisation": [
        "--profile",
        "ss1sp-organisation",
        "--eui64",
        "90B3D51F30000001",
        "--usage",
        "ka",
        "--role",
        "02",
    ],
}


def _state(ws: Workspace) -> tuple[int, bytes, list[str]]:
    """What a rejected command must leave untouched: inventory rows, journal bytes, artifact files."""
    with sqlite3.connect(ws.database) as db:  # type: ignore[arg-type]
        rows = db.execute("SELECT COUNT(*) FROM certificates").fetchone()[0]
    files = sorted(str(p.relative_to(ws.root)) for p in (ws.root / "artifacts").rglob("*") if p.is_file())
    return rows, hashlib.sha256(ws.journal_path.read_bytes()).digest(), files


def _issue(ws: Workspace, csr: Path, profile: str) -> int:
    return main(
        [
            "--workspace",
            str(ws.root),
            "issue",
            "--ca",
            "issuing",
            *PROFILE_ARGS[profile],
            "--approved-by",
            "bob",
            str(csr),
        ]
    )


@pytest.mark.parametrize("profile", sorted(PROFILE_ARGS))
@pytest.mark.parametrize("quirk", sorted(BAD_CSRS))
def test_bad_csr_is_rejected_and_changes_nothing(
    ca_workspace: Workspace, tmp_path: Path, quirk: str, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    csr = tmp_path / f"{quirk}.csr"
    csr.write_bytes(BAD_CSRS[quirk]())
    before = _state(ca_workspace)
    capsys.readouterr()
    assert _issue(ca_workspace, csr, profile) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("ceremony: ") and "Traceback" not in err
    assert len(err) < 300
    assert _state(ca_workspace) == before


def test_good_device_csr_is_issued(ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pem, _ = good_device_csr()
    csr = tmp_path / "device.csr"
    csr.write_bytes(pem)
    rows, _, files = _state(ca_workspace)
    assert _issue(ca_workspace, csr, "ss1sp-device") == 0
    assert "issued ss1sp-device serial" in capsys.readouterr().out
    after_rows, _, after_files = _state(ca_workspace)
    assert after_rows == rows + 1 and len(after_files) == len(files) + 1


def test_second_valid_certificate_for_same_identity_is_refused(
    ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in (1, 2):
        pem, _ = good_device_csr()
        (tmp_path / f"{n}.csr").write_bytes(pem)
    assert _issue(ca_workspace, tmp_path / "1.csr", "ss1sp-device") == 0
    before = _state(ca_workspace)
    capsys.readouterr()
    assert _issue(ca_workspace, tmp_path / "2.csr", "ss1sp-device") == 2
    assert "already has a valid ds certificate" in capsys.readouterr().err
    assert _state(ca_workspace) == before


def test_organisation_csr_asking_for_another_identity_is_refused(
    ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem, _ = good_org_csr(eui64="90B3D51F30000002", role="02")
    (tmp_path / "org.csr").write_bytes(pem)
    before = _state(ca_workspace)
    assert _issue(ca_workspace, tmp_path / "org.csr", "ss1sp-organisation") == 2
    assert "90B3D51F30000002" in capsys.readouterr().err
    assert _state(ca_workspace) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--eui64", "00DB12345678900"], "EUI-64 must be 16 hex digits"),
        (["--eui64", "00DB123456789001", "--role", "02"], "--role and --name are not allowed"),
        (["--eui64", "00DB123456789001", "--profile", "ss1spca-issuing"], "is a CA profile"),
        (["--eui64", "00DB123456789001", "--ca", "nope"], "no CA named 'nope'"),
        (["--eui64", "00DB123456789001", "--ca", "root"], "must be issued by a ss1spca-issuing CA"),
    ],
)
def test_bad_request_options_exit_2(
    ca_workspace: Workspace, tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pem, _ = good_device_csr()
    (tmp_path / "d.csr").write_bytes(pem)
    base = {"--ca": "issuing", "--profile": "ss1sp-device", "--usage": "ds", "--approved-by": "bob"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    argv = [x for kv in base.items() for x in kv]
    before = _state(ca_workspace)
    capsys.readouterr()
    assert main(["--workspace", str(ca_workspace.root), "issue", *argv, str(tmp_path / "d.csr")]) == 2
    assert message in capsys.readouterr().err
    assert _state(ca_workspace) == before


def test_lint_exit_codes(smki_vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--profile", "smki-device", str(smki_vectors / "device")]) == 0
    assert main(["lint", "--profile", "smki-organisation", str(smki_vectors / "organisation")]) == 0
    for bad in sorted((smki_vectors / "organisation-nonconformant").iterdir()):
        capsys.readouterr()
        assert main(["lint", "--profile", "smki-organisation", str(bad)]) == 1
        assert "NULL" in capsys.readouterr().out
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate\n")
    assert main(["lint", str(junk)]) == 2


def test_inventory_export_writes_one_row_per_certificate(ca_workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "inv.csv"
    assert (
        main(["--workspace", str(ca_workspace.root), "inventory", "export", "--format", "csv", "--out", str(out)]) == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0].startswith("serial,issuer_ca,issuer,subject,eui64") and len(lines) == 3
    assert (
        main(["--workspace", str(ca_workspace.root), "inventory", "export", "--format", "csv", "--out", str(out)]) == 2
    )
