"""A filesystem that cannot be turned against the tool (issue J, item 7): each planted symlink or loose
permission is refused in one line (exit 2; 1 for a pack that fails verification), and nothing changes:
the link's target is untouched, no row, no journal line, no file is added."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.cli.main import main
from ceremony.compliance.pack import MANIFEST, SIGNATURE, SIGNER
from ceremony.errors import CeremonyError, StateError
from ceremony.keys.signatures import sign
from ceremony.procedures.attestation import key_fingerprint
from ceremony.record.manifest import file_list
from ceremony.record.transcript import Journal, Transcript
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.csr_factory import good_device_csr
from tests.support.events import note

SECRET = "software-store.passphrase"


@pytest.fixture
def ws_root(tmp_path: Path) -> Iterator[Path]:
    """A software-store test workspace with a root and an issuing CA, and a compliance officer (victor) whose
    key file lives outside it."""
    from ceremony.issue.single import create_ca

    ws = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
    create_ca(
        ws, "issuing", profile_name="ss1spca-issuing", common_name="Test Issuing", approved_by="alice", issuer_ca="root"
    )
    ws.close()
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "victor.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "victor.key").chmod(0o600)
    person = {"organisation": "S1SP", "vetting_expires": "2030-01-01", "training_expires": "2030-01-01"}
    register = {"schema_version": 1, "people": {
        "victor": {"name": "Victor", "roles": ["compliance-officer"], **person,
                   "attestation_key": key_fingerprint(key.public_key())},
        "alice": {"name": "Alice", "roles": ["ra-officer", "operator"], **person},
    }}  # fmt: skip
    (ws.root / "people.yaml").write_text(yaml.safe_dump(register), encoding="utf-8")
    yield ws.root


def _state(root: Path) -> tuple[int, int, bytes, list[str]]:
    """What a refused command must leave as it was: inventory rows, journal bytes, every file's name."""
    with sqlite3.connect(root / "inventory.sqlite") as db:
        rows = db.execute("SELECT COUNT(*) FROM certificates").fetchone()[0]
        crls = db.execute("SELECT COUNT(*) FROM crls").fetchone()[0]
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(".lock"))
    return rows, crls, hashlib.sha256((root / "journal.jsonl").read_bytes()).digest(), files


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *, code: int = 2) -> str:
    """Run the command; it must exit ``code`` with exactly one line on stderr (returned), no traceback."""
    capsys.readouterr()
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("ceremony: ") and "Traceback" not in err, err
    return err


def _outside(tmp_path: Path, name: str = "target.txt", data: bytes = b"untouched\n") -> Path:
    target = tmp_path / "outside" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
    return target


# --- 1. backup through a link planted at OUT.partial ------------------------------------------------------------
def test_1_a_link_at_the_backups_partial_file_is_refused(
    ws_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _outside(tmp_path)
    out = tmp_path / "ws.tar.gz"
    Path(f"{out}.partial").symlink_to(target)
    before = _state(ws_root)
    err = _refused(["--workspace", str(ws_root), "workspace", "backup", "--out", str(out)], capsys)
    assert f"{out}.partial is a symbolic link" in err
    assert target.read_bytes() == b"untouched\n" and not os.path.lexists(out)
    assert _state(ws_root) == before


# --- 2. a symlinked journal ---------------------------------------------------------------------------------------
def test_2_a_symlinked_journal_is_never_appended_to(
    ws_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = ws_root / "journal.jsonl"
    target = _outside(tmp_path, "journal.jsonl", journal.read_bytes())
    journal.unlink()
    journal.symlink_to(target)
    before = target.read_bytes()
    err = _refused(["--workspace", str(ws_root), "crl", "--ca", "issuing", "--by", "alice"], capsys)
    assert f"{journal} is a symbolic link" in err
    # The primitive itself refuses it too, whoever appends: O_NOFOLLOW, not only the workspace's check.
    with pytest.raises(StateError, match="journal.jsonl is a symbolic link; a link is never followed"):
        Journal(journal).append(note("planted"))
    assert target.read_bytes() == before
    assert not list((ws_root / "artifacts").glob("crls/*"))


# --- 3. a symlinked ceremony transcript -----------------------------------------------------------------------
def test_3_a_symlinked_transcript_is_never_appended_to(ws_root: Path, tmp_path: Path) -> None:
    path = ws_root / "transcripts" / "c-1.jsonl"
    Transcript(path).start("c-1", "test", {})
    target = _outside(tmp_path, "c-1.jsonl", path.read_bytes())
    path.unlink()
    path.symlink_to(target)
    with pytest.raises(CeremonyError) as refused:
        Transcript(path).step("s1", "a step", actors=["alice"])
    assert refused.value.exit_code == 2 and "\n" not in refused.value.diagnostics()
    assert str(path) in refused.value.message and "symbolic link" in refused.value.message
    assert target.read_bytes() == path.read_bytes() and target.read_bytes().count(b"\n") == 1


# --- 4. a symlinked artifacts/crls directory ---------------------------------------------------------------------
def test_4_a_symlinked_crl_directory_is_refused(
    ws_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "outside" / "crls"
    elsewhere.mkdir(parents=True)
    (ws_root / "artifacts" / "crls").symlink_to(elsewhere, target_is_directory=True)
    before = _state(ws_root)
    err = _refused(["--workspace", str(ws_root), "crl", "--ca", "issuing", "--by", "alice"], capsys)
    assert f"{ws_root / 'artifacts' / 'crls'} is a symbolic link" in err and "remove" in err
    assert not list(elsewhere.iterdir())
    assert _state(ws_root) == before


# --- 5. a symlinked artifacts/certificates/<ca> directory ------------------------------------------------------------
def test_5_a_symlinked_certificate_directory_is_refused(
    ws_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "outside" / "certs"
    elsewhere.mkdir(parents=True)
    (ws_root / "artifacts" / "certificates").mkdir(exist_ok=True)
    (ws_root / "artifacts" / "certificates" / "issuing").symlink_to(elsewhere, target_is_directory=True)
    pem, _ = good_device_csr()
    (tmp_path / "d.csr").write_bytes(pem)
    before = _state(ws_root)
    argv = ["--workspace", str(ws_root), "issue", "--ca", "issuing", "--profile", "ss1sp-device", "--eui64",
            "00DB123456789001", "--usage", "ds", "--approved-by", "alice", str(tmp_path / "d.csr")]  # fmt: skip
    err = _refused(argv, capsys)
    assert "certificates/issuing is a symbolic link" in err
    assert not list(elsewhere.iterdir())
    assert _state(ws_root) == before


# --- 6, 7. links in artifacts/cas/ or transcripts/ would carry a secret into the signed pack ----------------------
@pytest.mark.plants_secrets  # the planted link points at a secret: the point of the test
@pytest.mark.parametrize("where", ["artifacts/cas/extra.pem", "transcripts/extra.jsonl"])
def test_6_7_a_link_in_the_evidence_is_refused_and_no_pack_is_written(
    ws_root: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws_root / where).symlink_to(ws_root / "secrets" / SECRET)
    reports = tmp_path / "reports"
    before = _state(ws_root)
    argv = ["--workspace", str(ws_root), "evidence", "build", "--as", "victor", "--key", str(tmp_path / "victor.key"),
            "--reports", str(reports), "--no-pdf"]  # fmt: skip
    err = _refused(argv, capsys)
    assert f"{ws_root / where} is a symbolic link" in err and "evidence pack never follows" in err
    assert not reports.exists()
    assert _state(ws_root) == before


# --- 8. a link at the next CRL's path --------------------------------------------------------------------------
@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_8_a_link_at_the_next_crls_path_is_refused_in_one_line(
    ws_root: Path, tmp_path: Path, dangling: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _outside(tmp_path)
    if dangling:
        target.unlink()
    crls = ws_root / "artifacts" / "crls"
    crls.mkdir(exist_ok=True)
    (crls / "issuing-1.crl").symlink_to(target)
    before = _state(ws_root)
    err = _refused(["--workspace", str(ws_root), "crl", "--ca", "issuing", "--by", "alice"], capsys)
    assert f"{crls / 'issuing-1.crl'} is a symbolic link where the next CRL belongs" in err
    assert "remove the link" in err
    assert (target.read_bytes() == b"untouched\n") if not dangling else not target.exists()
    assert _state(ws_root) == before


# --- 9. a dangling --out link ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [["workspace", "backup"], *(["inventory", "export", "--format", f] for f in ("csv", "pem", "parquet"))],
    ids=["backup", "export-csv", "export-pem", "export-parquet"],
)
def test_9_a_dangling_out_link_is_one_line(
    ws_root: Path, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "nowhere")
    before = _state(ws_root)
    err = _refused(["--workspace", str(ws_root), *command, "--out", str(out)], capsys)
    assert str(out) in err and ("symbolic link" in err or "exists" in err)
    assert not (tmp_path / "nowhere").exists()
    assert _state(ws_root) == before


def test_9_a_dangling_reports_link_is_one_line(
    ws_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    reports.symlink_to(tmp_path / "nowhere")
    argv = ["--workspace", str(ws_root), "evidence", "build", "--as", "victor", "--key", str(tmp_path / "victor.key"),
            "--reports", str(reports), "--no-pdf"]  # fmt: skip
    err = _refused(argv, capsys)
    assert f"{reports} is a dangling symbolic link" in err
    assert not (tmp_path / "nowhere").exists()


# --- 10-12. loose permissions ---------------------------------------------------------------------------------------
@pytest.mark.plants_secrets  # a loose mode is the point of the test
@pytest.mark.parametrize(
    ("where", "mode", "says"),
    [
        (".", 0o777, "writable by group or others (chmod go-w"),  # 10
        ("secrets", 0o755, "must be its owner's only (chmod 700"),  # 11
        ("share-cards", 0o750, "must be its owner's only (chmod 700"),
        ("workspace.yaml", 0o666, "writable by group or others (chmod go-w"),
        ("share-cards/alice.share-card.txt", 0o644, "must be readable by its owner only (chmod 600"),  # 12
        ("secrets/shares/test.user-pin/alice.share", 0o644, "must be readable by its owner only (chmod 600"),
    ],
    ids=["0777-workspace", "0755-secrets", "0750-share-cards", "0666-workspace-yaml", "0644-card", "0644-share"],
)
def test_10_11_12_loose_permissions_are_refused_in_one_line(
    ws_root: Path, where: str, mode: int, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ws_root / where
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text("not a real share\n", encoding="utf-8")
    path.chmod(mode)
    before = _state(ws_root)
    err = _refused(["--workspace", str(ws_root), "crl", "--ca", "issuing", "--by", "alice"], capsys)
    assert says in err and str(path.resolve()) in err
    path.chmod(0o700 if path.is_dir() else 0o600)
    assert _state(ws_root) == before


def test_12_a_readable_secret_file_is_refused_and_never_read_through_a_link(ws_root: Path, tmp_path: Path) -> None:
    from ceremony.errors import TokenError
    from ceremony.record.workspace import _read_secret_file

    secret = ws_root / "secrets" / SECRET
    link = ws_root / "secrets" / "linked.pin"
    link.symlink_to(secret)
    with pytest.raises(TokenError, match="never a link"):
        _read_secret_file(link, "token PIN", "CEREMONY_TOKEN_PIN", ws_root)
    link.unlink()


# --- 13. explicit modes whatever the umask -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["software", pytest.param("pkcs11", marks=pytest.mark.hsm)])
def test_13_every_file_and_directory_has_an_explicit_mode_whatever_the_umask(tmp_path: Path, kind: str) -> None:
    old = os.umask(0)
    try:
        ws = init_workspace(tmp_path / "ws", key_store=kind, purpose="test")  # type: ignore[arg-type]
        ws.close()
    finally:
        os.umask(old)
    root = tmp_path / "ws"
    expected = {".": 0o755, "workspace.yaml": 0o644, "journal.jsonl": 0o644, "artifacts": 0o755,
                "transcripts": 0o755, "secrets": 0o700, "share-cards": 0o700}  # fmt: skip
    if kind == "pkcs11":
        expected |= {"token": 0o700, "token/softhsm2.conf": 0o644, "secrets/so.pin": 0o600, "secrets/token.pin": 0o600}
    else:
        expected |= {f"secrets/{SECRET}": 0o600}
    assert {rel: stat.S_IMODE((root / rel).stat().st_mode) for rel in expected} == expected
    for path in root.rglob("*"):  # nothing the workbench made is writable by group or others
        if not path.is_symlink() and path.suffix != ".sqlite":
            assert not stat.S_IMODE(path.lstat().st_mode) & 0o022, path
    Workspace.open(root).close()  # and it opens: its own modes pass its own checks


# --- 14. a link anywhere in a pack fails verification ------------------------------------------------------------
def _signed_pack(out: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    out.mkdir()
    (out / "findings.json").write_text("[]", encoding="utf-8")
    (out / SIGNER).write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    data = json.dumps({"files": file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))


@pytest.mark.parametrize("where", ["x", "report/x"])
def test_14_a_link_anywhere_in_a_pack_fails_verification(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack"
    _signed_pack(pack)
    assert main(["evidence", "verify", str(pack)]) == 1  # intact, but its signer is not established
    assert capsys.readouterr().out.startswith("intact: ")
    (pack / where).parent.mkdir(exist_ok=True)
    (pack / where).symlink_to("/", target_is_directory=True)
    assert main(["evidence", "verify", str(pack)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{where}: a symbolic link in the pack (a pack holds no links; none is followed)\n" and err == ""


# --- 15. neither pack nor backup follows a link when reading workspace files --------------------------------------
@pytest.mark.plants_secrets  # the planted link points at a secret: the point of the test
@pytest.mark.parametrize("where", ["artifacts/cas/extra.pem", "transcripts/extra.jsonl", "registers/extra.yaml"])
def test_15_a_backup_never_follows_a_link(
    ws_root: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws_root / where).parent.mkdir(exist_ok=True)
    (ws_root / where).symlink_to(ws_root / "secrets" / SECRET)
    out = tmp_path / "ws.tar.gz"
    before = _state(ws_root)
    err = _refused(["--workspace", str(ws_root), "workspace", "backup", "--out", str(out)], capsys)
    assert f"{ws_root / where} is a symbolic link; a backup never follows one" in err
    assert not os.path.lexists(out) and not os.path.lexists(f"{out}.partial")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("backup-")] == []
    assert _state(ws_root) == before


def test_15_a_backup_without_links_holds_what_it_lists(
    ws_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tarfile

    out = tmp_path / "ws.tar.gz"
    assert main(["--workspace", str(ws_root), "workspace", "backup", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and not os.path.lexists(f"{out}.partial")
    with tarfile.open(out) as tar:
        index = json.loads(tar.extractfile("BACKUP.json").read())  # type: ignore[union-attr]
        for entry in index["files"]:
            data = tar.extractfile(entry["path"]).read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert "artifacts/cas/issuing.pem" in {e["path"] for e in index["files"]}
