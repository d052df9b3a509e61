"""Recovery before a CA's next command: a certificate file without its row is verified and recorded from the
journal's line, a foreign file is reported and left alone (the kill tests are tests/integration/test_crash.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceremony.errors import StateError
from ceremony.issue.recovery import issuer_of
from ceremony.issue.single import issue
from ceremony.model.tbs import Identity
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list


def test_a_file_whose_row_is_gone_is_verified_and_recorded_with_its_journalled_approval(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    csr = device_list(tmp_path / "list", 1).parent / "csr" / "00DB123400000001-ds.der"
    issued = issue(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", csr=csr.read_bytes(),
                   csr_source=str(csr), identity=Identity(eui64="00DB123400000001", usage="ds"),
                   approved_by="bob")  # fmt: skip
    with ca_workspace.inventory.transaction() as db:
        db._execute("DELETE FROM valid_identities")
        db._execute("DELETE FROM certificates WHERE serial = ?", (issued.record.serial,))
    issuer_of(ca_workspace, "issuing")
    row = ca_workspace.inventory.certificate("issuing", issued.record.serial)
    assert row is not None and row.approved_by == "bob" and row.der == issued.record.der
    (recovered,) = [e for e in ca_workspace.journal.entries() if e["event"] == "certificate.recover"]
    assert recovered["serial"] == issued.record.serial and "its journal line names the approval" in recovered["why"]


def test_a_file_that_is_no_certificate_of_the_ca_is_reported_and_left_alone(ca_workspace: Workspace) -> None:
    folder = ca_workspace.root / "artifacts" / "certificates" / "issuing"
    folder.mkdir(parents=True)
    planted = folder / "0BADC0DE.pem"
    planted.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(StateError, match="0BADC0DE.pem is not recorded and is not a certificate of CA issuing"):
        issuer_of(ca_workspace, "issuing")
    assert planted.exists() and ca_workspace.inventory.count() == 2
