"""The batch plan: what every signer of one run needs, as one frozen value, and the templates it carries, proven."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import StateError
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.profiles import ResolvedProfile
from ceremony.model.tbs import Issuer, Usage, key_identifier
from ceremony.model.template import TbsTemplate, assemble, batch_time, new_serial

#: The usage byte of a packed request (see ``devices.PACKED``) and the usage it stands for.
USAGES: tuple[tuple[int, Usage], ...] = ((0, "ds"), (1, "ka"))


#: A profile's pre-encoded TBS for each usage, indexed by a packed request's usage byte: (ds, ka).
Templates = tuple[TbsTemplate, TbsTemplate]


def build_templates(profile: ResolvedProfile, issuer: Issuer) -> Templates:
    return (TbsTemplate.build(profile, issuer, "ds"), TbsTemplate.build(profile, issuer, "ka"))


@dataclass(frozen=True)
class BatchPlan:
    """Everything a signer of this batch run needs, fixed before the first certificate is signed.

    The CA key is a token (or software) key object: it is never pickled. A pool worker gets the plan
    from its initializer, inherited through fork (``runner``); a single process passes it to
    ``issue_chunk`` itself.
    """

    batch_id: str
    key: ec.EllipticCurvePrivateKey
    ca_public: ec.EllipticCurvePublicKey
    #: Indexed by a packed request's usage byte.
    templates: Templates
    profile: ResolvedProfile
    issuer_cert: x509.Certificate
    #: UTCTime content octets: one notBefore for every certificate of this run.
    not_before: bytes
    #: Share of the certificates (besides the first and the last) that get the full profile checks.
    sample_rate: float
    #: How many certificates this run signs (the sample's last index).
    total: int


def issuer_of_certificate(issuer_cert: x509.Certificate) -> Issuer:
    """The issuer fields the TBS builder and the templates take from the CA certificate."""
    identifier = key_identifier(issuer_cert.public_key())  # type: ignore[arg-type]
    return Issuer(issuer_cert.subject, identifier, issuer_cert.not_valid_after_utc)


def ca_point(issuer_cert: x509.Certificate) -> bytes:
    """The CA's public key as an uncompressed point (a device CSR must not carry it)."""
    return issuer_cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def prove_exemplar(
    profile: ResolvedProfile, issuer: Issuer, templates: Templates, accepted: list[bytes], now: datetime
) -> None:
    """Once per batch: the exemplar of each usage, built by the builder and by the template, byte for byte,
    then linted in full (signed with a throwaway key).

    Raises:
        StateError: the template and the builder disagree, or the exemplar fails its profile.
    """
    for usage_byte, usage in USAGES:
        packed = next((p for p in accepted if p[8] == usage_byte), None)
        if packed is None:
            continue
        tbs = templates[usage_byte].prove(
            profile,
            issuer,
            usage,
            new_serial(),
            batch_time(now),
            packed[9:74],
            packed[:8],
        )
        throwaway = ec.generate_private_key(ec.SECP256R1())
        exemplar = assemble(tbs, throwaway.sign(tbs, ec.ECDSA(hashes.SHA256())))
        problems = failing(check_certificate(exemplar, profile))
        if problems:
            raise StateError(f"the {profile.name} exemplar fails its profile: {problems[0]}; batch refused")
