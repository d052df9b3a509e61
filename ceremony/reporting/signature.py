"""report.pdf's PAdES signature (ETSI EN 319 142-1) by the compliance officer, made with pyHanko.

The report is rendered as a PDF/A-3b (``ceremony.reporting.pdf``), signed here in memory, then written once; the pack's
SHA256SUMS and signed manifest cover it as signed. The signature is the officer's registered key (a key on their own
token, or a key file for trying the tool: :class:`~ceremony.keys.personal.PersonalKey`) with the self-signed certificate
made at their enrolment, which the register names (``attestation_certificate``, :func:`report_signer`). pyHanko never
holds a private key: :class:`_OfficerSigner` hands it the raw signature ``key.sign`` makes (ECDSA with SHA-256, or
RSA PKCS#1 v1.5 with SHA-256: ``ceremony.keys.signatures``), so a token key signs in a process of its own.

One incremental update adds an invisible signature field (a zero-size widget with the Print flag, as PDF/A-3 asks;
no appearance) and the signature, and leaves the document's metadata as rendered. The level:

- **B-B**: the workspace names no TSA, or its TSA is out of reach (the build says why and goes on);
- **B-LT**: the workspace names a TSA (``workspace.yaml`` ``timestamping:``) in reach: a signature timestamp (B-T),
  and the document security store (DSS) holds the validation data in the same signed revision: the officer's
  certificate and the TSA's chain. There is no CRL or OCSP response to embed: the officer's certificate is
  self-signed (the trust anchor itself, RFC 5280 6.1), and no revocation data is fetched for the TSA's certificate
  (a request goes only where the workspace names; a TSA whose certificate names a CRL or an OCSP responder would
  leave that data out).

Every signature made is validated at once (``ceremony.compliance.pdf_signature``) before it is returned.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, constants
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from ceremony.compliance.pdf_signature import (
    CERTIFICATE_LIMIT,
    asn1_certificate,
    certificate_key,
    check_pdf_signature,
)
from ceremony.errors import CeremonyError, InputError, StateError
from ceremony.fs import read_regular
from ceremony.keys.personal import PersonalKey
from ceremony.model.people import load_register
from ceremony.procedures.attestation import key_fingerprint
from ceremony.record.timestamps import Authority, Deferred, exchange, shown_url

#: The report's signature field.
FIELD = "compliance-officer"


@dataclass(frozen=True)
class ReportSigner:
    """Who signs report.pdf: the officer (register id and ``Name (id)``), their key and its enrolment certificate."""

    person: str
    name: str
    key: PersonalKey
    certificate: x509.Certificate


def report_signer(register_path: Path, person: str, key: PersonalKey, at: datetime) -> ReportSigner:
    """``person``'s :class:`ReportSigner`: the certificate the register names for them (relative to its folder),
    which must certify their registered key, the key in hand, and be valid at ``at``.

    Raises:
        InputError: no such certificate, or not one of that key valid now (one line, saying what to do).
    """
    registered = load_register(register_path).people.get(person)
    if registered is None:
        raise InputError(f"--as: {person!r} is not in the participant register")
    fix = (
        f"enrol their key (ceremony people enrol {person} --token LABEL: it certifies the key on their own token), "
        "or build without report.pdf (--no-pdf)"
    )
    if registered.attestation_certificate is None:
        raise InputError(
            f"--as: the register names no certificate of {person}'s key (attestation_certificate), which report.pdf's "
            f"signature needs: {fix}"
        )
    path = register_path.parent / registered.attestation_certificate
    try:
        certificate = x509.load_pem_x509_certificate(read_regular(path, CERTIFICATE_LIMIT, "participant certificate"))
    except CeremonyError as exc:
        raise InputError(f"--as: {person}'s certificate: {exc.message}") from None
    except ValueError:
        raise InputError(f"--as: {path}, {person}'s certificate, is not a PEM certificate: {fix}") from None
    certified = certificate_key(certificate)
    if certified != registered.attestation_key or certified != key_fingerprint(key.public_key()):
        raise InputError(f"--as: {path} certifies another key than {person}'s registered one: {fix}")
    if not isinstance(certificate.public_key(), ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InputError(f"--as: {person}'s key signs no PAdES signature here (an EC or RSA key does): {fix}")
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not start <= at <= end:
        raise InputError(
            f"--as: {person}'s certificate {path} is valid from {start:%Y-%m-%d} to {end:%Y-%m-%d}, not on "
            f"{at:%Y-%m-%d}: {fix}"
        )
    return ReportSigner(person, f"{registered.name} ({person})", key, certificate)


@dataclass(frozen=True)
class SignedReport:
    """A signed report: its bytes, its PAdES level, the signature timestamp's time and TSA (B-T and up), and why it has
    none when the workspace names a TSA that could not stamp it (``deferred``)."""

    data: bytes
    level: str
    timestamp: datetime | None = None
    tsa: str | None = None
    deferred: str | None = None

    def to_json(self) -> dict[str, Any]:
        stamped = self.timestamp.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if self.timestamp else None
        return {"pades_level": self.level, "timestamp": stamped, "tsa": self.tsa, "not_timestamped": self.deferred}


class _OfficerSigner(Signer):
    """pyHanko's signer over a :class:`PersonalKey`: the raw signature is ``key.sign(data)`` (SHA-256 inside it)."""

    def __init__(self, key: PersonalKey, certificate: x509.Certificate) -> None:
        super().__init__(signing_cert=asn1_certificate(certificate), embed_roots=True)
        self._key = key
        public = certificate.public_key()
        # What a dry run (pyHanko's size estimate) reserves: an RSA signature's size, a DER ECDSA one's largest.
        if isinstance(public, rsa.RSAPublicKey):
            self._size = public.key_size // 8
        elif isinstance(public, ec.EllipticCurvePublicKey):
            self._size = 2 * ((public.key_size + 7) // 8) + 9
        else:
            raise InputError("report.pdf is signed with an EC or RSA key only")

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm != "sha256":
            raise SigningError(f"the officer's key signs with SHA-256 only (asked for {digest_algorithm})")
        if dry_run:
            return bytes(self._size)
        return self._key.sign(data)


class _Stamper(TimeStamper):
    """pyHanko's RFC 3161 client over the workspace's TSA: no redirect followed, answers bounded, failures one line."""

    def __init__(self, authority: Authority) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._authority = authority

    async def async_request_tsa_response(self, req: Any) -> Any:
        # Blocking on purpose: nothing else runs on this loop, and no thread is alive when a token key forks to sign.
        return self._post(req.dump())

    def _post(self, query: bytes) -> Any:
        from asn1crypto import tsp

        answer = exchange(self._authority, query)  # the one road to the TSA (ceremony.record.timestamps)
        if isinstance(answer, Deferred):
            raise TimestampRequestError(answer.reason)
        try:
            response = tsp.TimeStampResp.load(answer)
            response.native  # noqa: B018 - parses it whole now: asn1crypto parses lazily
        except ValueError:
            raise TimestampRequestError(
                f"the TSA at {shown_url(self._authority.url)} answered with no timestamp response"
            ) from None
        return response


class _SignedRevision(IncrementalPdfFileWriter):
    """The one incremental update that adds the signature (and the DSS), the document's metadata left as rendered:
    pyHanko would rewrite the XMP's pdf:Producer as itself but the Info dictionary's as "WeasyPrint; pyHanko" (PDF/A-3,
    ISO 19005-3 6.6.2.3.1, wants them equal), and date both by the machine's clock."""

    def _update_meta(self) -> None:
        return None


class _ReportPdfSigner(PdfSigner):
    """pyHanko's PDF signer, dated by the workspace's clock and declaring only what a PDF 1.7 file may."""

    def __init__(self, meta: PdfSignatureMetadata, signer: Signer, stamper: TimeStamper | None, at: datetime) -> None:
        super().__init__(meta, signer, timestamper=stamper, new_field_spec=SigFieldSpec(FIELD))
        self._at = at

    def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
        # PDF/A-3 rests on PDF 1.7: the ESIC extension PAdES declares in a 1.7 file, never the PDF 2.0 (ISO/TS 32002)
        # that pyHanko declares for ECDSA on a named curve.
        pdf_out.ensure_output_version(version=(1, 7))
        pdf_out.register_extension(constants.ESIC_EXTENSION_1)

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._at  # the signature's /M: the workspace's clock (DESIGN.md principle 10)
        return session


class _NoFetchingNotice(logging.Filter):
    """pyHanko warns that it fetches no revocation data when it embeds validation data: on purpose (see above)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


def _sign(pdf: bytes, signer: ReportSigner, at: datetime, reason: str, authority: Authority | None) -> bytes:
    certificate = asn1_certificate(signer.certificate)
    tsa = authority.chain.certificates if authority is not None else ()
    context = ValidationContext(  # checks the officer's certificate (and the TSA's) before signing
        trust_roots=[certificate, *(asn1_certificate(c) for c in tsa[-1:])],
        other_certs=[asn1_certificate(c) for c in tsa[:-1]],
        moment=at,
    )
    meta = PdfSignatureMetadata(
        field_name=FIELD,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        name=signer.name,
        validation_context=context,
        signer_key_usage={"non_repudiation"},
        embed_validation_info=authority is not None,
        dss_settings=DSSContentSettings(include_vri=False, placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE),
    )
    stamper = _Stamper(authority) if authority is not None else None
    pdf_signer = _ReportPdfSigner(meta, _OfficerSigner(signer.key, signer.certificate), stamper, at)
    logger, notice = logging.getLogger("pyhanko.sign.signers.pdf_signer"), _NoFetchingNotice()
    logger.addFilter(notice)
    try:
        out = pdf_signer.sign_pdf(_SignedRevision(io.BytesIO(pdf)))
    except SigningError as exc:
        raise StateError(f"report.pdf cannot be signed: {str(exc).splitlines()[0]}") from None
    finally:
        logger.removeFilter(notice)
    return bytes(out.getvalue())


def sign_report(
    pdf: bytes, signer: ReportSigner, *, at: datetime, authority: Authority | None, reason: str
) -> SignedReport:
    """``pdf`` signed by ``signer`` at ``at`` (the workspace's clock): PAdES B-LT when ``authority`` (the workspace's
    TSA) stamps it, else B-B (with why not, when a TSA is named); validated before it is returned.

    Raises:
        StateError: the signature cannot be made, or does not validate.
    """
    deferred = None
    if authority is not None:
        try:
            data = _sign(pdf, signer, at, reason, authority)
        except (TimestampRequestError, PathBuildingError, PathValidationError) as exc:
            if isinstance(exc, TimestampRequestError):
                deferred = (str(exc).splitlines() or [type(exc).__name__])[0]
            else:
                deferred = f"the TSA at {shown_url(authority.url)} answered with a token not signed under its chain"
        else:
            stamped = check_pdf_signature(data, signer.certificate, moment=at, tsa_chain=authority.chain.certificates)
            if stamped.ok:
                return SignedReport(data, stamped.level, stamped.timestamp, stamped.tsa)
            deferred = f"the timestamped signature did not validate: {stamped.message}"
    data = _sign(pdf, signer, at, reason, None)
    check = check_pdf_signature(data, signer.certificate, moment=at)
    if not check.ok:
        raise StateError(f"the signature just made does not validate: {check.message}")
    return SignedReport(data, check.level, deferred=deferred)
