"""`ceremony issue | lint | inventory`: exit codes, one-line errors, and rejected input changing nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list
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


def _everything(ws: Workspace) -> tuple[object, ...]:
    """``_state`` and every other table a refused issue, revoke, crl or import could touch (claims, leases,
    batches, revocations, CRLs, findings), and every file of the workspace but the database."""
    with sqlite3.connect(ws.database) as db:  # type: ignore[arg-type]
        tables = [
            db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - the names are literals
            for table in ("valid_identities", "leases", "batches", "revocations", "crls", "findings", "certificates")
        ]
    files = sorted(
        (str(p.relative_to(ws.root)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in ws.root.rglob("*")
        if p.is_file() and not p.name.startswith("inventory.sqlite")
    )
    return _state(ws), tables, files


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


# --- issue K: people and roles checked at the desk (the workspace's register, data/people.yaml's people) ---------
# bob: operator and ra-officer; alice: administrator and approver; victor: approver and compliance-officer.
SOFTWARE = pytest.mark.parametrize("key_store_kind", ["software"])  # the register is the same in either store


def _refused(ws: Workspace, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a command that must be refused: exit 2, one line on stderr, nothing changed; returns the line."""
    before = _everything(ws)
    capsys.readouterr()
    assert main(["--workspace", str(ws.root), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert _everything(ws) == before
    return err.removeprefix("ceremony: ").rstrip("\n")


def _usage_error(ws: Workspace, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """An option missing: argparse's usage error (exit 2), nothing changed; returns its last line's message."""
    before = _everything(ws)
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["--workspace", str(ws.root), *argv])
    assert done.value.code == 2 and _everything(ws) == before
    return capsys.readouterr().err.strip().splitlines()[-1].split(": ", 1)[1]


def _device_csr(tmp_path: Path) -> Path:
    pem, _ = good_device_csr()
    path = tmp_path / "device.csr"
    path.write_bytes(pem)
    return path


NOT_RA = {
    "nobody": "--approved-by: 'nobody' is not in the participant register (the ra-officer role is needed)",
    "alice": "--approved-by: alice is not registered for the ra-officer role (registered: administrator, approver)",
    "victor": "--approved-by: victor is not registered for the ra-officer role (registered: approver, "
    "compliance-officer)",
}


@SOFTWARE
@pytest.mark.parametrize("person", sorted(NOT_RA))
def test_issue_is_approved_by_a_registered_ra_officer_only(
    ca_workspace: Workspace, tmp_path: Path, person: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issue", "--ca", "issuing", *PROFILE_ARGS["ss1sp-device"], str(_device_csr(tmp_path))]
    assert _refused(ca_workspace, [*argv, "--approved-by", person], capsys) == NOT_RA[person]
    assert main(["--workspace", str(ca_workspace.root), *argv, "--approved-by", "bob"]) == 0
    entry = ca_workspace.journal.entries()[-1]
    assert (entry["event"], entry["approved_by"]) == ("certificate.issue", "bob")


@SOFTWARE
@pytest.mark.parametrize("person", sorted(NOT_RA))
def test_a_batch_is_approved_by_a_registered_ra_officer_only(
    ca_workspace: Workspace, tmp_path: Path, person: str, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = device_list(tmp_path / "fleet", 2)
    argv = ["issue", "--ca", "issuing", "--profile", "ss1sp-device", "--devices", str(devices)]
    assert _refused(ca_workspace, [*argv, "--approved-by", person], capsys) == NOT_RA[person]
    assert main(["--workspace", str(ca_workspace.root), *argv, "--approved-by", "bob"]) == 0
    assert "4 of 4 issued" in capsys.readouterr().out


REVOKE_REFUSED = {
    "requester-unknown": (
        "ghost", "alice", "--requested-by: 'ghost' is not in the participant register",
    ),
    "approver-unknown": (
        "bob", "nobody", "--approved-by: 'nobody' is not in the participant register (the approver role is needed)",
    ),
    "approver-no-approver": (
        "alice", "bob", "--approved-by: bob is not registered for the approver role (registered: operator, ra-officer)",
    ),
    "approver-is-requester": (
        "alice", "alice", "a revocation needs two people: --requested-by and --approved-by must differ (both alice)",
    ),
}  # fmt: skip


@SOFTWARE
@pytest.mark.parametrize("case", sorted(REVOKE_REFUSED))
def test_revoke_is_requested_by_a_registered_person_and_approved_by_another_approver(
    ca_workspace: Workspace, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _issue(ca_workspace, _device_csr(tmp_path), "ss1sp-device") == 0
    requester, approver, message = REVOKE_REFUSED[case]
    by_eui64 = ["revoke", "--eui64", "00DB123456789001", "--ca", "issuing", "--reason", "keyCompromise"]
    argv = [*by_eui64, "--requested-by", requester, "--approved-by", approver]
    assert _refused(ca_workspace, argv, capsys) == message
    # Requested by anyone the register names (wendy is a witness and auditor), approved by another approver.
    assert main(["--workspace", str(ca_workspace.root), *by_eui64, "--requested-by", "wendy",
                 "--approved-by", "victor"]) == 0  # fmt: skip
    entry = ca_workspace.journal.entries()[-1]
    assert (entry["event"], entry["requested_by"], entry["approved_by"]) == ("certificate.revoke", "wendy", "victor")


NOT_OPERATOR = {
    "nobody": "--by: 'nobody' is not in the participant register (the operator role is needed)",
    "alice": "--by: alice is not registered for the operator role (registered: administrator, approver)",
}


@SOFTWARE
@pytest.mark.parametrize("person", sorted(NOT_OPERATOR))
def test_a_crl_is_published_by_a_registered_operator_only(
    ca_workspace: Workspace, person: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for ca in ("issuing", "root"):
        assert _refused(ca_workspace, ["crl", "--ca", ca, "--by", person], capsys) == NOT_OPERATOR[person]
    assert (
        _usage_error(ca_workspace, ["crl", "--ca", "issuing"], capsys) == "the following arguments are required: --by"
    )
    assert main(["--workspace", str(ca_workspace.root), "crl", "--ca", "issuing", "--by", "bob"]) == 0
    entry = next(e for e in reversed(ca_workspace.journal.entries()) if e["event"] == "crl.publish")
    assert (entry["kind"], entry["number"], entry["by"]) == ("crl", 1, "bob")


def _foreign_certificate(path: Path) -> Path:
    """A self-signed certificate from outside the workspace (what `inventory import` takes in)."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Foreign")])
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(7).not_valid_before(start).not_valid_after(start + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@SOFTWARE
@pytest.mark.parametrize("person", sorted(NOT_OPERATOR))
def test_an_import_is_made_by_a_registered_operator_only(
    ca_workspace: Workspace, tmp_path: Path, person: str, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = str(_foreign_certificate(tmp_path / "foreign.pem"))
    assert _refused(ca_workspace, ["inventory", "import", "--by", person, foreign], capsys) == NOT_OPERATOR[person]
    assert _usage_error(ca_workspace, ["inventory", "import", foreign], capsys).endswith("required: --by")
    rows, _, _ = _state(ca_workspace)
    assert main(["--workspace", str(ca_workspace.root), "inventory", "import", "--by", "bob", foreign]) == 0
    assert capsys.readouterr().out.startswith("imported 1 certificates")
    assert _state(ca_workspace)[0] == rows + 1
    entry = ca_workspace.journal.entries()[-1]
    assert (entry["event"], entry["by"], entry["imported"]) == ("inventory.import", "bob", 1)


@SOFTWARE
def test_a_workspace_without_a_register_issues_nothing(
    ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CEREMONY_REGISTER", raising=False)
    (ca_workspace.root / "people.yaml").unlink()
    argv = [
        "issue",
        "--ca",
        "issuing",
        *PROFILE_ARGS["ss1sp-device"],
        "--approved-by",
        "bob",
        str(_device_csr(tmp_path)),
    ]
    line = _refused(ca_workspace, argv, capsys)
    assert line.startswith(f"{ca_workspace.root / 'people.yaml'}: no participant register in this workspace")
