"""report.pdf's PAdES signature as the pack build makes it: a WeasyPrint PDF/A-3b signed and still PDF/A-3b with its
attachments; B-LT with a test TSA (timestamped, its validation data in the DSS); B-B and why when the TSA is out of
reach; a key on the officer's own SoftHSM2 token; and the register's certificate checked before anything is signed."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from ceremony.compliance.pdf_signature import certificate_key, check_pdf_signature
from ceremony.errors import InputError
from ceremony.record.timestamps import Authority, load_chain
from ceremony.reporting.notebooks import KERNEL
from ceremony.reporting.pdf import Attached, PrintedDocument, archival_pdf, available_renderers
from ceremony.reporting.signature import SignedReport, report_signer, sign_report
from tests.support.pades import SIGNED, Officer, around_now, days_around_now, officer, pdfsig, pdfsig_verdict, small_pdf
from tests.support.pdfa import assert_is_pdfa3b, associated_files
from tests.support.tsa import LocalTsa

DOCUMENT = PrintedDocument(
    title="S1SPKM assessment report, evidence pack 20261201T100000.000000Z",
    header="Evidence pack 20261201T100000.000000Z \u00b7 verdict: approved",
    author="Victor Example (victor)",
    subject="Assessment against the S1SPKM control catalogue: approved",
    keywords=("KEY-01", "CER-02"),
    created=SIGNED,
    attachments=(Attached("findings.json", b'{"findings": []}', "findings.json: every finding", "Data"),
                 Attached("evidence-index.json", b'{"files": []}', "evidence-index.json: the evidence")),
    report=True,
)  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small report printed as the pack prints report.pdf (WeasyPrint, PDF/A-3b, two associated files)."""
    if "weasyprint" not in available_renderers():
        pytest.skip("WeasyPrint is not usable (pip install weasyprint; apt-get install libpango-1.0-0)")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell("# S1SPKM assessment report\n\nEvery control, its findings."))
    cell = nbformat.v4.new_code_cell("shown")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "**verdict: approved**"})]
    nb.cells.append(cell)
    path = tmp_path_factory.mktemp("report") / "80-compliance-evidence-pack.ipynb"
    nbformat.write(nb, str(path))
    return archival_pdf(path, DOCUMENT, hide_code=True)


def _xmp(path: Path) -> str:
    from pypdf import PdfReader

    return bytes(PdfReader(path).trailer["/Root"]["/Metadata"].get_object().get_data()).decode("utf-8")


@pytest.mark.slow
def test_a_signed_report_is_still_pdfa_3b_with_its_attachments_and_validates(rendered: bytes, tmp_path: Path) -> None:
    from pypdf import PdfReader

    victor = officer()
    signed = sign_report(rendered, victor.signer, at=SIGNED, authority=None, reason="the report")
    assert (signed.level, signed.timestamp, signed.deferred) == ("B-B", None, None)
    assert signed.data.startswith(rendered)  # one incremental update: every rendered byte stays as it was
    path = tmp_path / "report.pdf"
    path.write_bytes(signed.data)
    assert_is_pdfa3b(path)
    assert {n: a["data"] for n, a in associated_files(path).items()} == {a.name: a.data for a in DOCUMENT.attachments}
    reader = PdfReader(path)
    root = reader.trailer["/Root"]
    assert "/Version" not in root and list(root["/Extensions"]) == ["/ESIC"]  # a PDF 1.7 file, as PDF/A-3 rests on
    [widget] = [a.get_object() for a in reader.pages[0]["/Annots"]]
    assert [float(x) for x in widget["/Rect"]] == [0, 0, 0, 0] and widget["/F"] & 4  # invisible, printable
    producer = str(reader.metadata["/Producer"])
    assert re.search(rf'pdf:Producer="{re.escape(producer)}"|<pdf:Producer>{re.escape(producer)}<', _xmp(path))
    check = check_pdf_signature(signed.data, victor.certificate, moment=SIGNED)
    assert (check.ok, check.level) == (True, "B-B"), check.message
    said = pdfsig(path)
    assert pdfsig_verdict(said) == "Signature is Valid." and "Total document signed" in said, said
    assert "Signing Time: Dec 01 2026 10:00:00" in said  # the workspace's clock, not the machine's (shown in UTC)


def _authority(tsa: LocalTsa) -> Authority:
    return Authority(tsa.url, load_chain(tsa.tsa.chain), 5.0)


@pytest.mark.slow
def test_with_a_tsa_the_signature_is_b_lt_timestamped_with_its_validation_data(
    rendered: bytes, tsa: LocalTsa, tmp_path: Path
) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    victor = officer(around_now(), days=days_around_now())
    signed = sign_report(rendered, victor.signer, at=SIGNED, authority=_authority(tsa), reason="the report")
    assert (signed.level, signed.tsa, signed.deferred) == ("B-LT", "Test TSA", None)
    assert signed.timestamp is not None and abs(signed.timestamp - datetime.now(timezone.utc)) < timedelta(minutes=5)
    held = {c.dump() for c in DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(signed.data))).load_certs()}
    chain = load_chain(tsa.tsa.chain).certificates
    assert held == {c.public_bytes(serialization.Encoding.DER) for c in (victor.certificate, *chain)}
    check = check_pdf_signature(signed.data, victor.certificate, moment=SIGNED, tsa_chain=chain)
    assert (check.ok, check.level, check.tsa, check.timestamp) == (True, "B-LT", "Test TSA", signed.timestamp)
    assert check.validated_at == signed.timestamp  # validated at the timestamp's time
    path = tmp_path / "report.pdf"
    path.write_bytes(signed.data)
    assert_is_pdfa3b(path)
    assert pdfsig_verdict(pdfsig(path)) == "Signature is Valid."
    unanchored = check_pdf_signature(signed.data, victor.certificate, moment=SIGNED)
    assert unanchored.message == "report.pdf: its signature is timestamped, but there is no TSA chain to check it"


@pytest.mark.parametrize("behaviour", ["refuse", "redirect", "gone"])
def test_a_tsa_out_of_reach_gives_b_b_and_says_why(tsa: LocalTsa, behaviour: str) -> None:
    victor = officer()
    if behaviour == "gone":
        tsa.stop()
    else:
        tsa.behaviour = behaviour  # type: ignore[assignment]
    signed = sign_report(small_pdf(), victor.signer, at=SIGNED, authority=_authority(tsa), reason="the report")
    said = {
        "refuse": f"the TSA at {tsa.url} answered HTTP 503",
        "redirect": f"the TSA at {tsa.url} answered with a redirect (HTTP 307), which is never followed",
        "gone": f"the TSA at {tsa.url} is out of reach (connection refused)",
    }[behaviour]
    assert (signed.level, signed.timestamp, signed.deferred) == ("B-B", None, said)
    assert check_pdf_signature(signed.data, victor.certificate, moment=SIGNED).ok


def test_a_token_answering_under_another_chain_gives_b_b(tsa: LocalTsa, tmp_path: Path) -> None:
    from tests.support.tsa import make_tsa

    other = load_chain(make_tsa(tmp_path / "other", "Other TSA").chain)
    signed = sign_report(small_pdf(), officer().signer, at=SIGNED, authority=Authority(tsa.url, other, 5.0), reason="x")
    assert (signed.level, signed.deferred) == (
        "B-B",
        f"the TSA at {tsa.url} answered with a token not signed under its chain",
    )


@pytest.mark.hsm
@pytest.mark.parametrize("algorithm", ["ec-p256", pytest.param("rsa-3072", marks=pytest.mark.slow)])
def test_a_key_on_the_officers_own_token_signs_a_valid_signature(
    tmp_path: Path, algorithm: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from ceremony.keys.personal import CertificateRequest, enrol_token_key, token_ref
    from tests.support.person_tokens import PERSON_PIN, person_token

    ref = token_ref("victor-card", softhsm_conf=person_token(tmp_path, "victor"))
    request = CertificateRequest(person="victor", organisation="DCC", not_before=SIGNED - timedelta(hours=1))
    key, certificate, _ = enrol_token_key(ref, PERSON_PIN, algorithm, request)  # type: ignore[arg-type]
    signer = Officer(key, certificate).signer  # type: ignore[arg-type]
    signed = sign_report(small_pdf(), signer, at=SIGNED, authority=None, reason="the report")
    check = check_pdf_signature(signed.data, certificate, moment=SIGNED)
    assert (check.ok, check.signer_key) == (True, certificate_key(certificate)), check.message
    path = tmp_path / "report.pdf"
    path.write_bytes(signed.data)
    assert pdfsig_verdict(pdfsig(path)) == "Signature is Valid."
    out, err = capfd.readouterr()
    assert PERSON_PIN not in out + err


# --- the register's certificate, checked before anything is signed ----------------------------------------------
def _register(tmp_path: Path, victor: Officer, **fields: str | None) -> Path:
    (tmp_path / "people").mkdir(exist_ok=True)
    (tmp_path / "people" / "victor.pem").write_bytes(victor.certificate.public_bytes(serialization.Encoding.PEM))
    person = {"name": "Victor Example", "organisation": "DCC", "roles": ["compliance-officer"],
              "vetting_expires": "2027-12-31", "training_expires": "2027-12-31",
              "attestation_key": certificate_key(victor.certificate),
              "attestation_certificate": "people/victor.pem"} | fields  # fmt: skip
    path = tmp_path / "people.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "people": {"victor": {k: v for k, v in person.items()
                                                                               if v is not None}}}))  # fmt: skip
    return path


def test_the_registered_certificate_of_the_key_in_hand_signs(tmp_path: Path) -> None:
    victor = officer()
    signer = report_signer(_register(tmp_path, victor), "victor", victor.key, SIGNED)
    assert (signer.name, signer.certificate) == ("Victor Example (victor)", victor.certificate)


FIX = (
    "enrol their key (ceremony people enrol victor --token LABEL: it certifies the key on their own token), or build "
    "without report.pdf (--no-pdf)"
)


def test_a_missing_or_wrong_certificate_is_refused_in_one_line(tmp_path: Path) -> None:
    victor, other = officer(), officer()
    with pytest.raises(InputError) as refused:
        report_signer(_register(tmp_path, victor, attestation_certificate=None), "victor", victor.key, SIGNED)
    assert refused.value.message == (
        "--as: the register names no certificate of victor's key (attestation_certificate), which report.pdf's "
        f"signature needs: {FIX}"
    )
    register = _register(tmp_path, victor)
    (tmp_path / "people" / "victor.pem").write_bytes(other.certificate.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(InputError) as refused:
        report_signer(register, "victor", victor.key, SIGNED)
    where = tmp_path / "people" / "victor.pem"
    assert refused.value.message == f"--as: {where} certifies another key than victor's registered one: {FIX}"
    register = _register(tmp_path, victor)
    with pytest.raises(InputError, match="certifies another key than victor's registered one"):
        report_signer(register, "victor", other.key, SIGNED)  # the key in hand is not the registered one
    (tmp_path / "people" / "victor.pem").write_text("not a certificate\n")
    with pytest.raises(InputError, match="victor's certificate, is not a PEM certificate"):
        report_signer(register, "victor", victor.key, SIGNED)


def test_a_certificate_not_valid_when_the_pack_is_built_is_refused(tmp_path: Path) -> None:
    victor = officer(datetime(2023, 1, 1, tzinfo=timezone.utc), days=365)
    with pytest.raises(InputError) as refused:
        report_signer(_register(tmp_path, victor), "victor", victor.key, SIGNED)
    assert refused.value.message == (
        f"--as: victor's certificate {tmp_path / 'people' / 'victor.pem'} is valid from 2023-01-01 to 2024-01-01, not "
        f"on 2026-12-01: {FIX}"
    )


def test_a_signed_report_says_what_it_is() -> None:
    report = SignedReport(b"%PDF", "B-B", deferred="the TSA at http://127.0.0.1:1/tsa answered HTTP 503")
    assert report.to_json() == {"pades_level": "B-B", "timestamp": None, "tsa": None,
                                "not_timestamped": "the TSA at http://127.0.0.1:1/tsa answered HTTP 503"}  # fmt: skip
