"""Revocation and CRLs: the direct encoding equals cryptography's builder; openssl accepts the CRL and ARL."""

from __future__ import annotations

import random
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.cli.main import main
from ceremony.errors import InputError, StateError
from ceremony.issue.crl import builder_crl, encode_entries, encode_tbs, publish_crl
from ceremony.issue.revocation import revoke
from ceremony.model.tbs import key_identifier
from ceremony.record.workspace import Workspace
from tests.support.csr_factory import good_device_csr
from tests.support.openssl import openssl_verify
from tests.support.tsa import LocalTsa, name_tsa

REASONS = ["keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "unspecified"]


@pytest.mark.parametrize("count", [0, 1, 7, 300])
def test_the_direct_encoding_is_the_builders_crl_byte_for_byte(count: int) -> None:
    rng = random.Random(count)
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "S1SP Issuing 1"),
            x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "07"),
        ]
    )
    start = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    entries = []
    for _ in range(count):
        serial = rng.getrandbits(rng.choice([8, 63, 64, 120, 127, 128]))  # short, long, and high-bit serials
        when = start + timedelta(seconds=rng.randrange(0, 40 * 365 * 86400))  # into GeneralizedTime years too
        entries.append((max(serial, 1), when, rng.choice(REASONS)))
    aki = key_identifier(key.public_key())
    this_update, next_update = start, start + timedelta(days=7)
    number = rng.randrange(1, 2**40)
    reference = builder_crl(issuer, aki, number, this_update, next_update, entries, key)
    ours = encode_tbs(issuer, aki, number, this_update, next_update, encode_entries(entries))
    assert ours == reference.tbs_certlist_bytes


def _issued(ws: Workspace, eui64: str, usage: str) -> str:
    from ceremony.issue.single import issue
    from ceremony.model.tbs import Identity

    issued = issue(
        ws, ca_name="issuing", profile_name="ss1sp-device", csr=good_device_csr()[0], csr_source="test",
        identity=Identity(eui64=eui64, usage=usage), approved_by="bob",  # type: ignore[arg-type]
    )  # fmt: skip
    return issued.record.serial


def test_revocation_rules(ca_workspace: Workspace) -> None:
    serial = _issued(ca_workspace, "00DB123456780001", "ds")
    _issued(ca_workspace, "00DB123456780001", "ka")
    kw = {"ca_name": "issuing", "requested_by": "bob"}
    with pytest.raises(InputError, match="--reason must be one of keyCompromise, cACompromise"):
        revoke(ca_workspace, serial=serial, reason="certificateHold", approved_by="alice", **kw)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"a revocation needs two people: .* must differ \(both bob\)"):
        revoke(ca_workspace, serial=serial, reason="keyCompromise", approved_by="bob", **kw)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="CA issuing issued no certificate with serial 00"):
        revoke(ca_workspace, serial="00", reason="superseded", approved_by="alice", **kw)  # type: ignore[arg-type]
    done = revoke(ca_workspace, serial=serial.lower(), reason="superseded", approved_by="alice", **kw)  # type: ignore[arg-type]
    assert [r.serial for r in done] == [serial]
    with pytest.raises(StateError, match="is already revoked"):
        revoke(ca_workspace, serial=serial, reason="superseded", approved_by="victor", **kw)  # type: ignore[arg-type]
    by_eui64 = revoke(ca_workspace, eui64="00db123456780001", reason="cessationOfOperation", approved_by="victor", **kw)  # type: ignore[arg-type]
    assert [r.usage for r in by_eui64] == ["ka"]  # the ds certificate was already revoked
    issuing = ca_workspace.inventory.ca("issuing")
    with pytest.raises(InputError, match="a revocation needs two people"):  # a CA certificate's, as every one
        revoke(ca_workspace, ca_name="root", serial=issuing.serial, reason="superseded", requested_by="alice",
               approved_by="alice")  # fmt: skip
    entry = ca_workspace.journal.entries()[-1]
    assert entry["event"] == "certificate.revoke" and entry["reason"] == "cessationOfOperation"
    assert (entry["requested_by"], entry["approved_by"]) == ("bob", "victor")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_crl_and_arl_verify_with_openssl_and_revoked_certificates_fail_the_crl_check(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    good = _issued(ca_workspace, "00DB123456780002", "ds")
    bad = _issued(ca_workspace, "00DB123456780003", "ka")
    revoke(ca_workspace, ca_name="issuing", serial=bad, reason="keyCompromise", requested_by="bob", approved_by="alice")
    numbers = [publish_crl(ca_workspace, "issuing", by="bob").number for _ in range(3)]
    assert numbers == [1, 2, 3]  # strictly increasing across publications
    crl = publish_crl(ca_workspace, "issuing", by="bob")
    arl = publish_crl(ca_workspace, "root", by="bob")
    assert (crl.kind, crl.number, crl.entries, arl.kind, arl.number, arl.entries) == ("crl", 4, 1, "arl", 1, 0)
    assert crl.next_update - crl.this_update == timedelta(days=7)
    assert arl.next_update - arl.this_update == timedelta(days=365)
    root, issuing = (ca_workspace.root / f"artifacts/cas/{n}.pem" for n in ("root", "issuing"))

    def openssl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", *args], capture_output=True, text=True)

    assert (
        "verify OK"
        in openssl("crl", "-inform", "DER", "-in", str(crl.path), "-noout", "-verify", "-CAfile", str(issuing)).stderr
    )
    assert (
        "verify OK"
        in openssl("crl", "-inform", "DER", "-in", str(arl.path), "-noout", "-verify", "-CAfile", str(root)).stderr
    )
    bundle = tmp_path / "trust.pem"
    pems = [root.read_bytes(), issuing.read_bytes()]
    for published in (crl, arl):
        pems.append(x509.load_der_x509_crl(published.path.read_bytes()).public_bytes(serialization.Encoding.PEM))
    bundle.write_bytes(b"".join(pems))
    for serial, expected in ((good, 0), (bad, 2)):
        der = ca_workspace.inventory._execute(
            "SELECT der FROM certificates WHERE issuer_ca = 'issuing' AND serial = ?", (serial,)
        ).fetchone()[0]
        leaf = tmp_path / f"{serial}.pem"
        leaf.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
        proc = openssl_verify("-crl_check_all", "-CAfile", str(bundle), str(leaf))
        assert proc.returncode == expected, proc.stdout + proc.stderr
        if expected:
            assert "certificate revoked" in proc.stdout + proc.stderr


def test_the_cli_revokes_and_publishes(ca_workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    serial = _issued(ca_workspace, "00DB123456780004", "ds")
    ca_workspace.close()
    base = ["--workspace", str(ca_workspace.root)]
    assert main([*base, "revoke", serial, "--ca", "issuing", "--reason", "superseded", "--requested-by", "bob",
                 "--approved-by", "alice"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith(f"revoked {serial} from issuing (superseded, ")
    assert main([*base, "crl", "--ca", "issuing", "--by", "bob"]) == 0
    assert capsys.readouterr().out.startswith("CRL 1 of issuing: 1 entries, next update ")
    assert main([*base, "revoke", "--eui64", "00DB123456780004", "--ca", "nope", "--reason", "superseded",
                 "--requested-by", "bob", "--approved-by", "alice"]) == 2  # fmt: skip
    assert "no CA named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("key_store_kind", ["software"])
def test_publishing_and_importing_check_the_operator_against_the_workspaces_register(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    """The API (what notebook 40 calls) refuses as the CLI does; the journal names the operator who did it."""
    from ceremony.issue.importer import import_certificates

    before = ca_workspace.journal_path.read_bytes()
    with pytest.raises(InputError) as err:
        publish_crl(ca_workspace, "issuing", by="victor")
    assert err.value.message == (
        "--by: victor is not registered for the operator role (registered: approver, compliance-officer)"
    )
    with pytest.raises(InputError) as err:
        import_certificates(ca_workspace, [ca_workspace.root / "artifacts" / "cas"], by="carol")
    assert err.value.message == "--by: carol is not registered for the operator role (registered: custodian)"
    assert ca_workspace.journal_path.read_bytes() == before
    assert not (ca_workspace.root / "artifacts" / "crls").exists() or not any(
        (ca_workspace.root / "artifacts" / "crls").iterdir()
    )
    assert publish_crl(ca_workspace, "issuing", by="bob").number == 1
    assert ca_workspace.journal.entries()[-2]["by"] == "bob"  # the CRL's entry, before its checkpoint
    done = import_certificates(ca_workspace, [ca_workspace.root / "artifacts" / "cas"], by="bob")
    assert (done.imported, done.already, ca_workspace.journal.entries()[-1]["by"]) == (0, 2, "bob")


@pytest.mark.parametrize("key_store_kind", ["software"])
def test_a_crl_publication_in_reach_of_the_tsa_timestamps_its_checkpoint(
    ca_workspace: Workspace, tsa: LocalTsa
) -> None:
    from ceremony.model.events import Event
    from ceremony.record.timestamps import check_token_file, checkpoint_message, load_chain
    from ceremony.record.transcript import read_entries

    name_tsa(ca_workspace.root, tsa)
    ws = Workspace.open(ca_workspace.root)
    published = publish_crl(ws, "issuing", by="bob")
    (checkpoint,) = [e for e in read_entries(ws.root / "checkpoints.jsonl") if e["reason"].startswith("crl issuing")]
    token = ws.root / "timestamping" / "checkpoints" / f"checkpoint-{checkpoint['checkpoint']}.tsr"
    assert (
        published.number == 1 and check_token_file(token, checkpoint_message(checkpoint), load_chain(tsa.tsa.chain)).ok
    )
    (stamped,) = [e for e in ws.journal.entries() if e["event"] == Event.TIMESTAMP_TOKEN]
    assert (stamped["stamped"], stamped["made_at"]) == (str(checkpoint["checkpoint"]), checkpoint["signed_at"])
    ws.close()
