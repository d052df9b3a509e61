"""Issuance: checked before and after signing, recorded in inventory, artifacts and journal."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError
from ceremony.issue.signing import IssuanceError, sign_checked
from ceremony.issue.single import create_ca, issue
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, Issuer, build_tbs, key_identifier
from ceremony.record.workspace import Workspace
from tests.support.csr_factory import good_device_csr, good_org_csr
from tests.support.shapes import (
    assert_is_device_cert,
    assert_is_issuing_ca,
    assert_is_org_cert,
    assert_is_root_ca,
)


def _ca_cert(ws: Workspace, name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(name))


def test_ca_certificates_have_their_profile_shapes(ca_workspace: Workspace) -> None:
    root, issuing = _ca_cert(ca_workspace, "root"), _ca_cert(ca_workspace, "issuing")
    assert_is_root_ca(root)
    assert_is_issuing_ca(issuing, root)
    assert [e["event"] for e in ca_workspace.journal.entries()] == ["workspace.init", "ca.create", "ca.create"]


def test_device_issuance_is_recorded_everywhere(ca_workspace: Workspace) -> None:
    pem, _ = good_device_csr()
    issued = issue(
        ca_workspace,
        ca_name="issuing",
        profile_name="ss1sp-device",
        csr=pem,
        csr_source="d.csr",
        identity=Identity(eui64="00DB123456789001", usage="ds"),
        approved_by="bob",
    )
    assert_is_device_cert(
        issued.certificate, _ca_cert(ca_workspace, "issuing"), "00DB123456789001", "ds", "1.3.6.1.4.1.32473.2.1"
    )
    (row,) = [r for r in ca_workspace.inventory._certificates("", ()) if r.profile == "ss1sp-device"]
    assert (row.eui64, row.usage, row.approved_by, row.status) == ("00DB123456789001", "ds", "bob", "valid")
    csr_der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    assert row.csr_sha256 == hashlib.sha256(csr_der).hexdigest()
    assert len(row.serial) == 32 and row.ski and row.aki and row.policy_oids == "1.3.6.1.4.1.32473.1.1.1"
    entry = ca_workspace.journal.entries()[-1]
    assert entry["event"] == "certificate.issue" and entry["approved_by"] == "bob" and entry["serial"] == row.serial
    assert entry["outputs"] == {row.artifact: hashlib.sha256(issued.artifact.read_bytes()).hexdigest()}
    assert ca_workspace.journal.verify().ok


def test_issuance_archives_the_csr_with_its_certificate(ca_workspace: Workspace) -> None:
    """The CSR (as DER, whatever was sent) is archived under the row's csr_sha256, in the transaction that records
    the certificate: a device can be re-certified from it later (``recorded:<sha256>`` in a device list)."""
    pem, _ = good_device_csr()
    issued = issue(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", csr=pem, csr_source="d.csr",
                   identity=Identity(eui64="00DB123456789001", usage="ds"), approved_by="bob")  # fmt: skip
    csr_der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    assert issued.record.csr_sha256 == hashlib.sha256(csr_der).hexdigest()
    assert ca_workspace.inventory.archived_csr(issued.record.csr_sha256) == csr_der
    assert ca_workspace.inventory.recorded_csrs([("00DB123456789001", "ds", issued.record.csr_sha256)]) == [csr_der]


def test_a_certificate_not_recorded_leaves_no_csr_in_the_archive(
    ca_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive and the certificates agree: a failure inside the recording transaction (here its journal line)
    rolls the CSR back with the row."""
    pem, _ = good_device_csr()
    digest = hashlib.sha256(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)).hexdigest()

    def fail(_entry: object) -> None:
        raise RuntimeError("journal unavailable")

    monkeypatch.setattr(ca_workspace.journal, "append", fail)
    with pytest.raises(RuntimeError, match="journal unavailable"):
        issue(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", csr=pem, csr_source="d.csr",
              identity=Identity(eui64="00DB123456789001", usage="ds"), approved_by="bob")  # fmt: skip
    assert ca_workspace.inventory.valid_for_identity("issuing", "ss1sp-device", "00DB123456789001", "ds", None) == []
    assert ca_workspace.inventory.archived_csr(digest) == "no CSR with this SHA-256 is in the inventory's archive"


def test_organisation_issuance(ca_workspace: Workspace) -> None:
    pem, _ = good_org_csr(eui64="90B3D51F30000001", role="02")
    issued = issue(
        ca_workspace,
        ca_name="issuing",
        profile_name="ss1sp-organisation",
        csr=pem,
        csr_source="o.csr",
        identity=Identity(eui64="90B3D51F30000001", usage="ka", role="02"),
        approved_by="bob",
    )
    assert_is_org_cert(issued.certificate, _ca_cert(ca_workspace, "issuing"), "90B3D51F30000001", "02", "ka")


def test_unknown_role_code_is_refused(ca_workspace: Workspace) -> None:
    pem, _ = good_device_csr()
    with pytest.raises(InputError, match="role 42 is not allowed"):
        issue(
            ca_workspace,
            ca_name="issuing",
            profile_name="ss1sp-organisation",
            csr=pem,
            csr_source="o.csr",
            identity=Identity(eui64="90B3D51F30000001", usage="ka", role="42"),
            approved_by="bob",
        )


def test_signature_by_the_wrong_key_is_caught_after_signing(ca_workspace: Workspace) -> None:
    issuing = _ca_cert(ca_workspace, "issuing")
    subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    builder = build_tbs(
        Identity(eui64="00DB123456789009", usage="ds"),
        subject_key,
        get_profile("ss1sp-device"),
        Issuer(issuing.subject, key_identifier(issuing.public_key()), issuing.not_valid_after_utc),  # type: ignore[arg-type]
        2**125 + 7,
        ca_workspace.clock.now(),
    )
    impostor = ec.generate_private_key(ec.SECP256R1())
    discarded: list[tuple[int, str]] = []
    with pytest.raises(IssuanceError, match="does not verify with the issuer's public key"):
        sign_checked(
            builder,
            get_profile("ss1sp-device"),
            impostor,
            issuing,
            on_discard=lambda cert, why: discarded.append((cert.serial_number, why)),
        )
    assert [serial for serial, _ in discarded] == [2**125 + 7]


def test_serials_are_16_octets_and_unique(ca_workspace: Workspace) -> None:
    serials = set()
    for n in range(10):
        pem, _ = good_device_csr()
        issued = issue(
            ca_workspace,
            ca_name="issuing",
            profile_name="ss1sp-device",
            csr=pem,
            csr_source="d",
            identity=Identity(eui64=f"00DB1234567890{n:02X}", usage="ka"),
            approved_by="bob",
        )
        assert len(issued.certificate.serial_number.to_bytes(16, "big").lstrip(b"\0")) == 16
        serials.add(issued.record.serial)
    assert len(serials) == 10


def test_a_second_root_with_the_same_name_is_refused(ca_workspace: Workspace) -> None:
    with pytest.raises(StateError, match="CA 'root' already exists"):
        create_ca(ca_workspace, "root", profile_name="ss1spca-root", common_name="again", approved_by="alice")


@pytest.mark.parametrize("key_store_kind", ["software"])
def test_issue_checks_the_approver_against_the_workspaces_register(ca_workspace: Workspace) -> None:
    """The API (what notebooks call) refuses as the CLI does: the approver must be a registered RA officer."""
    before = ca_workspace.journal_path.read_bytes()
    identity = Identity(eui64="00DB123456789001", usage="ds")
    kw = {"ca_name": "issuing", "profile_name": "ss1sp-device", "csr_source": "test", "identity": identity}
    with pytest.raises(InputError) as err:
        issue(ca_workspace, csr=good_device_csr()[0], approved_by="alice", **kw)  # type: ignore[arg-type]
    assert err.value.message == (
        "--approved-by: alice is not registered for the ra-officer role (registered: administrator, approver)"
    )
    assert ca_workspace.journal_path.read_bytes() == before
    assert issue(ca_workspace, csr=good_device_csr()[0], approved_by="bob", **kw).record.approved_by == "bob"  # type: ignore[arg-type]
