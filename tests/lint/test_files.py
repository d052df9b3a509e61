"""`lint_paths`: folders, PEM bundles, DER, classification without --profile, CRLs, and non-certificates."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ceremony.errors import InputError
from ceremony.lint.files import lint_paths
from ceremony.lint.findings import Severity
from tests.lint.conftest import Chain
from tests.support import mutants as m

#: The folder a real vector sits in → the profile classification must pick.
FOLDER_PROFILE = {
    "device": "smki-device",
    "organisation": "smki-organisation",
    "organisation-nonconformant": "smki-organisation",
}


def test_all_435_real_files_are_classified_and_graded(smki: Path) -> None:
    started = time.perf_counter()
    report = lint_paths([smki], None, now=m.NOW)
    elapsed = time.perf_counter() - started
    assert Counter((Path(i.path).parent.name, i.profile) for i in report.items) == {
        ("device", "smki-device"): 400,
        ("organisation", "smki-organisation"): 33,
        ("organisation-nonconformant", "smki-organisation"): 2,
    }
    assert all(i.findings[0].code == "lint.profile_chosen" for i in report.items)
    failed = sorted(Path(i.path).name for i in report.items if i.failed)
    assert failed == ["dccboxed-mdr-ds.pem", "dccboxed-mdr-ka.pem"]
    assert report.exit_code == 1
    assert report.render().splitlines()[-1] == "435 certificates, 0 CRLs: 2 with errors, 6 warnings, 25 notices"
    assert elapsed < 10, f"lint of 435 files took {elapsed:.1f} s"


def test_fixed_profile_lints_the_real_folders_cleanly(smki: Path) -> None:
    for folder in ("device", "organisation"):
        report = lint_paths([smki / folder], FOLDER_PROFILE[folder], now=m.NOW)
        assert report.exit_code == 0
        assert {i.profile for i in report.items} == {FOLDER_PROFILE[folder]}


def test_classification_picks_each_certificates_profile_in_a_bundle(smki: Path, chain: Chain, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        (smki / "device" / "00db123456789001-ds.pem").read_bytes()
        + (smki / "organisation" / "dccboxed-Z1-supplier-ka.pem").read_bytes()
        + chain.device.cert.public_bytes(Encoding.PEM)
        + chain.organisation.cert.public_bytes(Encoding.PEM)
        + chain.issuing.cert.public_bytes(Encoding.PEM)
        + chain.root.cert.public_bytes(Encoding.PEM)
    )
    report = lint_paths([bundle], None, now=m.NOW)
    assert [(i.path.split("#")[1], i.profile) for i in report.items] == [
        ("1", "smki-device"),
        ("2", "smki-organisation"),
        ("3", "ss1sp-device"),
        ("4", "ss1sp-organisation"),
        ("5", "ss1spca-issuing"),
        ("6", "ss1spca-root"),
    ]
    assert report.exit_code == 0
    assert "classified as ss1sp-device" in report.items[2].findings[0].message


def test_folders_are_searched_recursively_by_suffix(chain: Chain, tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / "root.CER").write_bytes(chain.root.der)  # DER, upper-case suffix
    (nested / "device.crt").write_bytes(chain.device.cert.public_bytes(Encoding.PEM))
    (nested / "issuing.crl").write_bytes(m.build_crl(chain.issuing))  # DER CRL
    (nested / "notes.txt").write_text("not a certificate, and not looked at")
    report = lint_paths([tmp_path], None, now=m.NOW)
    assert sorted((Path(i.path).name, i.kind, i.profile) for i in report.items) == [
        ("device.crt", "certificate", "ss1sp-device"),
        ("issuing.crl", "crl", None),
        ("root.CER", "certificate", "ss1spca-root"),
    ]
    assert report.exit_code == 0
    assert report.counts() == {"certificates": 2, "crls": 1, "with_errors": 0, "warnings": 0, "notices": 0}


def test_render_prints_one_line_per_finding_and_a_summary(chain: Chain, tmp_path: Path) -> None:
    bad = tmp_path / "bad.der"
    bad.write_bytes(m.mutate(chain.device.der, m.ski_not_method2, m.flip_critical("subject_alt_name")))
    report = lint_paths([bad], "ss1sp-device", now=m.NOW)
    lines = report.render().splitlines()
    assert lines == [
        f"{bad}: ERROR profile.san.not_critical: subject_alt_name must be critical",
        f"{bad}: ERROR profile.ski.not_method2: subjectKeyIdentifier is not RFC 5280 4.2.1.2 method 2 "
        "(GBCS 12: 0x4 + low 60 bits of SHA-1)",
        "1 certificates, 0 CRLs: 1 with errors, 0 warnings, 0 notices",
    ]
    assert report.exit_code == 1
    assert report.render(Severity.ERROR).splitlines()[-1] == lines[-1]


def test_json_report_round_trips(smki: Path) -> None:
    report = lint_paths([smki / "organisation-nonconformant"], "smki-organisation", now=m.NOW)
    data = json.loads(json.dumps(report.to_json()))
    assert data["exit_code"] == 1
    assert data["summary"]["with_errors"] == 2
    codes = {f["code"] for item in data["items"] for f in item["findings"] if f["severity"] == "ERROR"}
    assert codes == {"profile.signature.params_not_absent"}


def test_a_pem_with_text_around_the_block_is_read(chain: Chain, tmp_path: Path) -> None:
    path = tmp_path / "dump.pem"
    path.write_bytes(b"Certificate:\n    Data: ...\n" + chain.root.cert.public_bytes(Encoding.PEM) + b"trailer\n")
    assert [i.profile for i in lint_paths([path], None, now=m.NOW).items] == ["ss1spca-root"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello", "neither PEM nor DER"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "holds no CERTIFICATE or X509 CRL block"),
        (b"\x30\x03\x02\x01\x01", "not a DER X.509 certificate"),
        (b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n", "not a DER X.509 certificate"),
    ],
    ids=["text", "private-key-pem", "der-junk", "pem-junk"],
)
def test_files_that_are_no_certificate_are_rejected_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "x.pem"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        lint_paths([path], None)
    assert str(path) in caught.value.message


def test_missing_path_empty_folder_and_unknown_profile_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        lint_paths([tmp_path / "nope"], None)
    with pytest.raises(InputError, match="no certificate or CRL files found"):
        lint_paths([tmp_path], None)
    with pytest.raises(InputError, match="unknown profile 'nope'"):
        lint_paths([tmp_path], "nope")
