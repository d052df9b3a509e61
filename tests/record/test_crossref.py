"""The cross-checks' reads of the inventory: certificates with artifact and DER, CAs with key labels."""

from __future__ import annotations

from cryptography import x509

from ceremony.record.crossref import stored_cas, stored_certificates
from ceremony.record.workspace import Workspace


def test_every_certificate_and_ca_is_read_with_what_the_cross_checks_compare(ca_workspace: Workspace) -> None:
    cas = stored_cas(ca_workspace.inventory)
    assert [(c.name, c.issuer_ca) for c in cas] == [("root", None), ("issuing", "root")]
    rows = stored_certificates(ca_workspace.inventory)
    assert [r.serial for r in rows] == [c.serial for c in cas]
    for row, ca in zip(rows, cas, strict=True):
        assert x509.load_der_x509_certificate(row.der).serial_number == int(row.serial, 16)
        assert (row.status, row.batch_id, row.artifact) == ("valid", None, f"artifacts/cas/{ca.name}.pem")
