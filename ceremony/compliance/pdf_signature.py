"""report.pdf's PAdES signature, validated with pyHanko: by the compliance officer's registered certificate, over the
whole file, at a pinned moment.

A pack's report carries exactly one signature (``ETSI.CAdES.detached``, ETSI EN 319 142-1), made by
``ceremony.reporting.signature`` with the key the participant register names for the officer and the self-signed
certificate made at their enrolment; the pack carries that certificate (:data:`SIGNER_CERTIFICATE`) and the register.
:func:`check_pdf_signature` validates it with pyHanko's validator and pyhanko-certvalidator: the signer's certificate
is the one trust root (it is self-signed), the signature covers the whole file (no incremental update after it), its
bytes and value verify, and a signature timestamp (PAdES B-T) verifies under the TSA chain the pack carries.

The moment it is validated at is pinned, never the machine's clock: the timestamp's time when the signature has one,
else the pack's creation (the manifest's ``created``), so that an assessor reading the pack years on is not told that a
three-year certificate has since expired. :func:`report_signature` does this for a pack, and names the signer from the
pack's register by the key's fingerprint.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.errors import CeremonyError
from ceremony.fs import read_regular

#: The certificate report.pdf's signature is verified under: the officer's, made at enrolment, beside signer.pem.
SIGNER_CERTIFICATE = "signer-certificate.pem"
#: The largest certificate file read.
CERTIFICATE_LIMIT = 64 << 10
#: The SubFilter of a PAdES signature (ETSI EN 319 142-1 5.1).
PADES_SUBFILTER = "/ETSI.CAdES.detached"
#: The largest report read (as ceremony.compliance.pack reads it).
_REPORT_LIMIT = 1 << 30


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict on a PDF's signature: ``ok`` and one line saying why; when it was validated: its PAdES level
    (``B-B``; ``B-T`` with a signature timestamp; ``B-LT`` with the validation data in the document's DSS), the signing
    key's fingerprint, the timestamp's time and TSA (B-T and up), and the moment it was validated at."""

    ok: bool
    message: str
    level: str = ""
    signer_key: str = ""
    timestamp: datetime | None = None
    tsa: str = ""
    validated_at: datetime | None = None


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _der_fingerprint(spki_der: bytes) -> str:
    return "sha256:" + hashlib.sha256(spki_der).hexdigest()


def certificate_key(certificate: x509.Certificate) -> str:
    """The fingerprint of the key ``certificate`` certifies (SHA-256 of its DER SubjectPublicKeyInfo), as the register
    and the manifest name keys."""
    return _der_fingerprint(
        certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def asn1_certificate(certificate: x509.Certificate) -> Any:
    """``certificate`` as asn1crypto's (what pyHanko and pyhanko-certvalidator take)."""
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _timestamp_tokens(signer_info: Any) -> list[Any]:
    """The signature timestamp tokens (RFC 3161 SignedData) among a SignerInfo's unsigned attributes."""
    attributes = signer_info["unsigned_attrs"]
    if not attributes:
        return []
    return [
        value["content"]
        for attribute in attributes
        if attribute["type"].native == "signature_time_stamp_token"
        for value in attribute["values"]
    ]


def _dss_certificates(reader: Any) -> list[bytes] | None:
    """The DER of every certificate in the document security store, or None when there is none."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError

    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return None
    return [certificate.dump() for certificate in dss.load_certs()]


def check_pdf_signature(
    data: bytes,
    certificate: x509.Certificate,
    *,
    moment: datetime,
    tsa_chain: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
    what: str = "report.pdf",
) -> SignatureCheck:
    """Whether ``data`` is a PDF carrying exactly one PAdES signature, over the whole file, by the key ``certificate``
    certifies, valid under that certificate (the one trust root) and, when it is timestamped, with a timestamp valid
    under ``tsa_chain`` (the TSA's certificate, then its issuers up to the root).

    It is validated at ``at`` when given (tests), else at the timestamp's time when there is one, else at ``moment``
    (the pack's creation). Never raises for a bad PDF or signature: the verdict says what is wrong, in one line.
    """
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data))
        signatures = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        return SignatureCheck(False, f"{what}: cannot be read as a PDF ({type(exc).__name__})")
    if len(signatures) != 1:
        return SignatureCheck(
            False,
            f"{what}: carries {len(signatures) or 'no'} signature{'' if len(signatures) == 1 else 's'}; a report "
            "carries exactly one, the compliance officer's PAdES signature",
        )
    [signature] = signatures
    subfilter = str(signature.sig_object.get("/SubFilter", ""))
    if subfilter != PADES_SUBFILTER:
        return SignatureCheck(False, f"{what}: its signature is no PAdES signature (SubFilter {subfilter or 'none'})")
    try:
        signed_by = _der_fingerprint(signature.signer_cert.public_key.dump())
    except (ValueError, KeyError, TypeError) as exc:
        return SignatureCheck(False, f"{what}: its signature names no signing certificate ({type(exc).__name__})")
    registered = certificate_key(certificate)
    if signed_by != registered:
        return SignatureCheck(
            False,
            f"{what}: signed by the key {signed_by[:23]}..., not the registered {registered[:23]}...",
            "",
            signed_by,
        )
    tokens = _timestamp_tokens(signature.signer_info)
    stamped: datetime | None = None
    if tokens:
        if not tsa_chain:
            return SignatureCheck(False, f"{what}: its signature is timestamped, but there is no TSA chain to check it")
        try:
            stamped = tokens[0]["encap_content_info"]["content"].parsed["gen_time"].native
        except (ValueError, KeyError, TypeError, AttributeError):
            return SignatureCheck(False, f"{what}: its signature timestamp cannot be read")
    when = at or stamped or moment
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not start <= when <= end:  # a trust anchor's validity is not path validation's (RFC 5280 6.1.1 d): checked here
        return SignatureCheck(
            False,
            f"{what}: its signing certificate is valid from {_iso(start)} to {_iso(end)}, not at {_iso(when)}",
            "",
            signed_by,
        )
    signer_context = ValidationContext(trust_roots=[asn1_certificate(certificate)], moment=when)
    tsa_context = (
        ValidationContext(
            trust_roots=[asn1_certificate(tsa_chain[-1])],
            other_certs=[asn1_certificate(c) for c in tsa_chain[:-1]],
            moment=at or stamped,
        )
        if stamped is not None
        else None
    )
    try:
        status = validate_pdf_signature(signature, signer_context, tsa_context)
    except (PdfError, ValueError, KeyError, TypeError) as exc:  # pyHanko's validation errors are ValueErrors
        return SignatureCheck(False, f"{what}: its signature cannot be validated ({type(exc).__name__})", "", signed_by)
    if not status.intact:
        return SignatureCheck(False, f"{what}: its signature is broken: the signed bytes changed", "", signed_by)
    if not status.valid:
        return SignatureCheck(False, f"{what}: its signature value does not verify", "", signed_by)
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        level = status.modification_level.name if status.modification_level is not None else "unknown"
        return SignatureCheck(
            False,
            f"{what}: changed after it was signed: an incremental update follows the signed revision "
            f"(modification level {level})",
            "",
            signed_by,
        )
    if not status.trusted:
        why = getattr(status.trust_problem_indic, "name", "no path to it")
        return SignatureCheck(
            False,
            f"{what}: its signing certificate is not valid under the registered certificate at {_iso(when)} ({why})",
            "",
            signed_by,
        )
    timestamp = status.timestamp_validity
    tsa = ""
    if stamped is not None:
        if timestamp is None or not (timestamp.intact and timestamp.valid and timestamp.trusted):
            return SignatureCheck(
                False, f"{what}: its signature timestamp does not verify under the TSA chain", "", signed_by
            )
        names = tsa_chain[0].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        tsa = str(names[0].value) if names else tsa_chain[0].subject.rfc4514_string()
    level = "B-B" if stamped is None else "B-T"
    if stamped is not None:
        held = _dss_certificates(reader)
        needed = [c.public_bytes(serialization.Encoding.DER) for c in (certificate, *tsa_chain)]
        if held is not None and all(der in held for der in needed):
            level = "B-LT"
    return SignatureCheck(True, f"{what}: PAdES {level} signature intact", level, signed_by, stamped, tsa, when)


def _manifest_fields(manifest: bytes) -> tuple[str, datetime] | str:
    """The manifest's signer key and creation time, or what is wrong with them."""
    try:
        parsed = json.loads(manifest)
        key = parsed["signer"]["key"]
        created = datetime.fromisoformat(parsed["created"])
    except (ValueError, KeyError, TypeError):
        return "the manifest names no signer key or creation time"
    if not isinstance(key, str) or created.tzinfo is None:
        return "the manifest names no signer key or creation time"
    return key, created


def report_signature(
    pack: Path, manifest: bytes, verifier: Any | None = None, *, at: datetime | None = None, report: str = "report.pdf"
) -> SignatureCheck:
    """The verdict on a pack's report signature (see :func:`check_pdf_signature`): made with the key the manifest
    names as its signer (and, when given, ``verifier``: the public key its signature is verified under), certified by
    the pack's :data:`SIGNER_CERTIFICATE`, registered in the pack's ``registers/people.yaml`` for a compliance officer,
    who is named. Validated at the timestamp's time (B-T), else at the manifest's ``created``; ``at`` overrides both.
    """
    from ceremony.model.people import load_register
    from ceremony.record.timestamps import PACK_CHAIN, load_chain

    fields = _manifest_fields(manifest)
    if isinstance(fields, str):
        return SignatureCheck(False, f"{report}: {fields}")
    manifest_key, created = fields
    try:
        certificate = x509.load_pem_x509_certificate(
            read_regular(pack / SIGNER_CERTIFICATE, CERTIFICATE_LIMIT, "signer certificate", root=pack)
        )
        chain = load_chain(pack / PACK_CHAIN, root=pack).certificates if (pack / PACK_CHAIN).is_file() else ()
        register = load_register(pack / "registers" / "people.yaml")
        data = read_regular(pack / report, _REPORT_LIMIT, "report", root=pack)
    except CeremonyError as exc:
        return SignatureCheck(False, f"{report}: its signature cannot be checked: {exc.message}")
    except ValueError:
        return SignatureCheck(False, f"{report}: {SIGNER_CERTIFICATE} is not a PEM certificate")
    key = certificate_key(certificate)
    if key != manifest_key:
        return SignatureCheck(
            False, f"{report}: {SIGNER_CERTIFICATE} certifies {key[:23]}..., not the manifest's signer"
        )
    if verifier is not None and key != _der_fingerprint(
        verifier.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ):
        return SignatureCheck(
            False, f"{report}: {SIGNER_CERTIFICATE} certifies {key[:23]}..., not the key the manifest is verified under"
        )
    check = check_pdf_signature(data, certificate, moment=created, tsa_chain=chain, at=at, what=report)
    if not check.ok:
        return check
    holders = [(pid, p) for pid, p in register.people.items() if p.attestation_key == key]
    if len(holders) != 1:
        return SignatureCheck(False, f"{report}: signed by {key[:23]}..., which the pack's register names for no one")
    pid, person = holders[0]
    if "compliance-officer" not in person.roles:
        return SignatureCheck(
            False, f"{report}: signed by {person.name} ({pid}), not registered as a compliance officer"
        )
    assert check.validated_at is not None  # set whenever the check is ok
    if at is not None:
        when = f"validated at {_iso(at)}, as asked"
    elif check.timestamp is not None:
        when = f"timestamped by {check.tsa} at {_iso(check.timestamp)}, validated at that time"
    else:
        when = f"not timestamped; validated at the pack's creation, {_iso(created)}"
    return SignatureCheck(
        True,
        f"{check.message}, by {person.name} ({pid}), compliance officer ({when})",
        check.level,
        key,
        check.timestamp,
        check.tsa,
        check.validated_at,
    )
