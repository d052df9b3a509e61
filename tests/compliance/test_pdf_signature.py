"""report.pdf's PAdES signature validated with pyHanko at a pinned moment, cross-checked with poppler's pdfsig: intact,
one byte changed, an update appended, another key, no or two signatures, and a pack's signer named from its register."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from ceremony.compliance.pdf_signature import (
    SIGNER_CERTIFICATE,
    SignatureCheck,
    certificate_key,
    check_pdf_signature,
    report_signature,
)
from ceremony.errors import StateError
from ceremony.reporting.signature import sign_report
from tests.support.pades import SIGNED, Officer, flip_signed_byte, officer, pdfsig, pdfsig_verdict, small_pdf


@pytest.fixture(scope="module")
def victor() -> Officer:
    return officer()


@pytest.fixture(scope="module")
def signed(victor: Officer) -> bytes:
    return sign_report(small_pdf(), victor.signer, at=SIGNED, authority=None, reason="test").data


def _check(data: bytes, victor: Officer, **kwargs: object) -> SignatureCheck:
    return check_pdf_signature(data, victor.certificate, moment=SIGNED, **kwargs)  # type: ignore[arg-type]


def test_a_signed_report_is_intact_for_pyhanko_and_for_pdfsig(signed: bytes, victor: Officer, tmp_path: Path) -> None:
    check = _check(signed, victor)
    assert (check.ok, check.message, check.level) == (True, "report.pdf: PAdES B-B signature intact", "B-B")
    assert check.signer_key == certificate_key(victor.certificate) and check.validated_at == SIGNED
    (tmp_path / "report.pdf").write_bytes(signed)
    said = pdfsig(tmp_path / "report.pdf")
    assert pdfsig_verdict(said) == "Signature is Valid." and "Total document signed" in said, said
    assert "Signature Type: ETSI.CAdES.detached" in said and "Signer Certificate Common Name: victor" in said


def test_one_changed_byte_inside_the_signed_range_breaks_it_for_both(
    signed: bytes, victor: Officer, tmp_path: Path
) -> None:
    changed = flip_signed_byte(signed)
    assert len(changed) == len(signed) and changed != signed
    check = _check(changed, victor)
    assert (check.ok, check.message) == (False, "report.pdf: its signature is broken: the signed bytes changed")
    (tmp_path / "report.pdf").write_bytes(changed)
    assert pdfsig_verdict(pdfsig(tmp_path / "report.pdf")) != "Signature is Valid."


def test_an_update_appended_after_the_signature_is_reported(signed: bytes, victor: Officer, tmp_path: Path) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Rotate"] = generic.NumberObject(90)  # the page turned after signing: a change of the document itself
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    check = _check(out.getvalue(), victor)
    assert not check.ok and check.message.startswith(
        "report.pdf: changed after it was signed: an incremental update follows the signed revision (modification level"
    ), check.message
    (tmp_path / "report.pdf").write_bytes(out.getvalue())
    said = pdfsig(tmp_path / "report.pdf")
    assert "Total document signed" not in said, said  # pdfsig too: the signature no longer covers the file


def test_a_signature_by_another_key_than_the_registered_officers_is_refused(signed: bytes, victor: Officer) -> None:
    intruder = officer()
    forged = sign_report(small_pdf(), intruder.signer, at=SIGNED, authority=None, reason="test").data
    check = _check(forged, victor)
    theirs, registered = certificate_key(intruder.certificate), certificate_key(victor.certificate)
    assert (check.ok, check.message) == (
        False,
        f"report.pdf: signed by the key {theirs[:23]}..., not the registered {registered[:23]}...",
    )


def test_a_report_with_no_signature_or_two_is_refused(
    signed: bytes, victor: Officer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _check(small_pdf(), victor).message == (
        "report.pdf: carries no signatures; a report carries exactly one, the compliance officer's PAdES signature"
    )
    monkeypatch.setattr("ceremony.reporting.signature.FIELD", "second")  # a field of its own, after the officer's
    with pytest.raises(StateError, match="the signature just made does not validate: report.pdf: carries 2 sig"):
        sign_report(signed, victor.signer, at=SIGNED, authority=None, reason="again")
    assert _check(b"%PDF-1.7\nnot really\n", victor).message.startswith("report.pdf: cannot be read as a PDF (")


def test_the_moment_is_pinned_so_a_certificate_that_expired_since_still_validates(
    signed: bytes, victor: Officer
) -> None:
    years_on = datetime(2036, 6, 1, tzinfo=timezone.utc)
    assert _check(signed, victor).ok  # validated at the pack's creation, whenever the assessor reads it
    late = _check(signed, victor, at=years_on)
    assert (late.ok, late.message) == (
        False,
        "report.pdf: its signing certificate is valid from 2026-12-01T09:00:00Z to 2029-11-30T09:00:00Z, not at "
        "2036-06-01T00:00:00Z",
    )
    early = _check(signed, victor, at=victor.certificate.not_valid_before_utc - timedelta(days=1))
    assert not early.ok and early.message.endswith("not at 2026-11-30T09:00:00Z"), early.message


# --- a pack's report signature: the certificate it carries, the manifest's signer, the register -------------------
def _pack(tmp_path: Path, victor: Officer, signed: bytes, roles: list[str] | None = None) -> tuple[Path, bytes]:
    """A pack's files report_signature reads: report.pdf, signer-certificate.pem, registers/people.yaml, a manifest."""
    pack = tmp_path / "pack"
    (pack / "registers").mkdir(parents=True)
    (pack / "report.pdf").write_bytes(signed)
    (pack / SIGNER_CERTIFICATE).write_bytes(victor.certificate.public_bytes(serialization.Encoding.PEM))
    person = {"name": "Victor Example", "organisation": "DCC", "roles": roles or ["compliance-officer", "approver"],
              "vetting_expires": "2027-12-31", "training_expires": "2027-12-31",
              "attestation_key": certificate_key(victor.certificate)}  # fmt: skip
    register = {"schema_version": 1, "people": {"victor": person}}
    (pack / "registers" / "people.yaml").write_text(yaml.safe_dump(register), encoding="utf-8")
    manifest = {"created": SIGNED.isoformat(), "signer": {"person": "victor", "key": person["attestation_key"]}}
    return pack, json.dumps(manifest).encode()


def test_a_packs_report_signature_names_the_registered_officer(signed: bytes, victor: Officer, tmp_path: Path) -> None:
    pack, manifest = _pack(tmp_path, victor, signed)
    check = report_signature(pack, manifest, victor.key.public_key())
    assert (check.ok, check.message) == (
        True,
        "report.pdf: PAdES B-B signature intact, by Victor Example (victor), compliance officer (not timestamped; "
        "validated at the pack's creation, 2026-12-01T10:00:00Z)",
    )


def test_a_packs_report_signature_by_someone_not_an_officer_or_another_key_fails(
    signed: bytes, victor: Officer, tmp_path: Path
) -> None:
    pack, manifest = _pack(tmp_path / "approver", victor, signed, roles=["approver"])
    assert report_signature(pack, manifest).message == (
        "report.pdf: signed by Victor Example (victor), not registered as a compliance officer"
    )
    pack, manifest = _pack(tmp_path / "other", victor, signed)
    other = officer().key.public_key()
    assert report_signature(pack, manifest, other).message == (
        f"report.pdf: {SIGNER_CERTIFICATE} certifies {certificate_key(victor.certificate)[:23]}..., not the key the "
        "manifest is verified under"
    )
    (pack / SIGNER_CERTIFICATE).unlink()
    assert report_signature(pack, manifest).message.startswith("report.pdf: its signature cannot be checked: ")


def test_a_packs_unsigned_report_fails(victor: Officer, tmp_path: Path) -> None:
    pack, manifest = _pack(tmp_path, victor, small_pdf())
    assert report_signature(pack, manifest).message == (
        "report.pdf: carries no signatures; a report carries exactly one, the compliance officer's PAdES signature"
    )
    assert report_signature(pack, b"{}").message == "report.pdf: the manifest names no signer key or creation time"
