"""report.pdf's PAdES signature in the tests: an officer with a file key and its enrolment certificate, a small PDF
to sign, poppler's pdfsig as the outside check, and the byte-level damage the tests do to a signed file."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.keys.personal import CertificateRequest, FileKey, self_signed_certificate
from ceremony.reporting.signature import ReportSigner

#: When the tests' officer enrolled (the suite's day, tests/conftest.py SUITE_TIME).
ENROLLED = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
#: When the tests sign (the suite's clock).
SIGNED = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Officer:
    """A compliance officer as report.pdf's signature sees them: a file key and its self-signed certificate."""

    key: FileKey
    certificate: x509.Certificate

    @property
    def signer(self) -> ReportSigner:
        return ReportSigner("victor", "Victor Example (victor)", self.key, self.certificate)


def officer(not_before: datetime = ENROLLED, days: int = 3 * 365) -> Officer:
    """An officer enrolled at ``not_before`` (P-256 file key; the certificate ``self_signed_certificate`` makes)."""
    private = ec.generate_private_key(ec.SECP256R1())
    request = CertificateRequest(person="victor", organisation="DCC", not_before=not_before, days=days)
    return Officer(FileKey(private), self_signed_certificate(private, request))


def around_now() -> datetime:
    """An enrolment time for tests whose signature a test TSA stamps: the TSA (``openssl ts``) stamps by the machine's
    clock, the workbench signs by the suite's; a certificate from a day before the earlier of the two, valid for
    :func:`days_around_now` days, covers both on any date."""
    return min(datetime.now(timezone.utc), SIGNED) - timedelta(days=1)


def days_around_now() -> int:
    """How long a certificate from :func:`around_now` must be valid to cover both clocks with a day to spare."""
    return (max(datetime.now(timezone.utc), SIGNED) - around_now()).days + 2


def small_pdf() -> bytes:
    """A one-page PDF with one text line (pypdf), to sign in byte-level tests."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})  # fmt: skip
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 12 Tf 72 770 Td (S1SPKM assessment report) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdfsig(path: Path) -> str:
    """What poppler's pdfsig prints for ``path`` (times in UTC; its exit status aside)."""
    if shutil.which("pdfsig") is None:
        if os.environ.get("CI"):
            pytest.fail("pdfsig is not installed, and CI must run every PDF signature test (.ci/run installs it)")
        pytest.skip("pdfsig is not installed (apt-get install poppler-utils)")
    done = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60, check=False,  # noqa: S607
                          env={**os.environ, "TZ": "UTC"})  # fmt: skip
    return done.stdout + done.stderr


def pdfsig_verdict(text: str) -> str:
    """pdfsig's "Signature Validation:" verdict (e.g. ``Signature is Valid.``), the only signature's."""
    verdicts = re.findall(r"^\s*- Signature Validation: (.*)$", text, re.MULTILINE)
    assert len(verdicts) == 1, text
    return str(verdicts[0]).strip()


def flip_signed_byte(data: bytes) -> bytes:
    """``data`` with one byte inside the signed range changed: a letter of the text the page shows (its content
    stream is stored uncompressed) or, in a WeasyPrint PDF, a digit of the document information's creation date."""
    for marker, offset in ((b"(S1SPKM assessment report)", 2), (b"/CreationDate (D:2", 0)):
        at = data.find(marker)
        if at >= 0:
            at += len(marker) - offset  # "repor(t)", or the digit after "D:2"
            break
    else:
        raise AssertionError("no byte to change found")
    changed = bytearray(data)
    changed[at] = changed[at] ^ 0x01
    return bytes(changed)
