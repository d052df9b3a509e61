"""`lint_paths`: folders, PEM bundles, classification without --profile, CRLs, and non-certificates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.checks.lint import lint_paths
from ceremony.errors import InputError


def test_classification_picks_each_real_certificates_profile(smki_vectors: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        (smki_vectors / "device" / "00db123456789001-ds.pem").read_bytes()
        + (smki_vectors / "organisation" / "dccboxed-Z1-supplier-ka.pem").read_bytes()
    )
    report = lint_paths([bundle], None)
    assert [(i.path.split("#")[1], i.profile) for i in report.items] == [
        ("1", "smki-device"),
        ("2", "smki-organisation"),
    ]
    assert report.exit_code == 0
    assert report.to_json()["summary"]["certificates"] == 2


def test_summary_line_counts_warnings_and_notices(smki_vectors: Path) -> None:
    report = lint_paths([smki_vectors / "organisation"], "smki-organisation")
    assert report.render().splitlines()[-1] == "33 certificates, 0 CRLs: 0 with errors, 6 warnings, 25 notices"


def test_a_crl_is_linted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CA")]))
        .last_update(now)
        .next_update(now + timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.crl"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    report = lint_paths([path], None)
    assert [(i.kind, sorted(f.code for f in i.findings)) for i in report.items] == [("crl", ["crl.aki.missing"])]
    assert report.exit_code == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello", "neither PEM nor DER"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "holds no CERTIFICATE or X509 CRL block"),
        (b"\x30\x03\x02\x01\x01", "not a DER X.509 certificate"),
    ],
)
def test_files_that_are_no_certificate_are_rejected(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.pem"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        lint_paths([path], None)


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        lint_paths([tmp_path / "nope"], None)
