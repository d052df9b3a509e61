"""CRL checks (DOMAIN.md profile E, minimal): each defect its own code; crashes are FATAL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from asn1crypto import x509 as ax

from ceremony.errors import InputError
from ceremony.lint import certificate
from ceremony.lint.certificate import check_crl
from ceremony.lint.findings import Severity
from tests.lint.conftest import Chain
from tests.support import mutants as m


def _codes(der: bytes, **kwargs: object) -> set[str]:
    return {f.code for f in check_crl(der, **kwargs)}  # type: ignore[arg-type]


def test_a_profile_e_crl_passes_with_its_issuer(chain: Chain) -> None:
    crl = m.build_crl(chain.issuing, revoked=(m.serial16(), m.serial16()))
    assert check_crl(crl, issuer=chain.issuing.cert, subject="issuing.crl") == []


@pytest.mark.parametrize(
    "mutations, outer, code",
    [
        ([m.drop_crl_extension("authority_key_identifier")], None, "crl.aki.missing"),
        ([m.drop_crl_extension("crl_number")], None, "crl.number.missing"),
        ([m.crl_field("next_update", None)], None, "crl.next_update.missing"),
        (
            [m.crl_field("next_update", ax.Time(name="utc_time", value=datetime(2020, 1, 1, tzinfo=timezone.utc)))],
            None,
            "crl.next_update.not_after_this_update",
        ),
        (
            [m.crl_field("this_update", ax.Time(name="general_time", value=m.NOW))],
            None,
            "crl.time_encoding",
        ),
        ([m.crl_field("version", "v1")], None, "crl.version"),
        ([m.crl_field("signature", ax.SignedDigestAlgorithm.load(m.SHA256_RSA))], None, "crl.signature.algorithm"),
        (
            [m.crl_field("signature", ax.SignedDigestAlgorithm.load(bytes.fromhex("300c06082a8648ce3d0403020500")))],
            None,
            "crl.signature.params_not_absent",
        ),
        ([], m.ECDSA_SHA384, "crl.signature.mismatch"),
    ],
    ids=[
        "aki-missing",
        "number-missing",
        "next-update-missing",
        "next-update-before-this-update",
        "this-update-generalized-time",
        "version-1",
        "rsa-signature",
        "null-signature-parameters",
        "outer-differs",
    ],
)
def test_each_crl_defect_has_its_code(
    chain: Chain, mutations: list[m.CRLMutation], outer: bytes | None, code: str
) -> None:
    crl = m.build_crl(chain.issuing)
    assert _codes(m.mutate_crl(crl)) == set()
    codes = _codes(m.mutate_crl(crl, *mutations, outer=outer))
    assert code in codes
    # signature.mismatch: the SHA-384 outer identifier is not allowed either.
    assert codes - {code} <= {"crl.signature.algorithm"}


def test_crl_issuer_checks(chain: Chain) -> None:
    stranger = m.build_ca("Stranger", issuer=chain.root, days=4383)
    crl = m.build_crl(chain.issuing)
    assert _codes(crl, issuer=stranger.cert) == {
        "crl.signature.invalid",
        "crl.issuer.name_mismatch",
        "crl.aki.mismatch",
    }


def test_crl_allowed_algorithms_are_a_parameter(chain: Chain) -> None:
    crl = m.build_crl(chain.issuing)
    assert _codes(crl, signature_algorithms=["ecdsa-with-SHA384"]) == {"crl.signature.algorithm"}


def test_a_crashing_crl_check_is_fatal(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(certificate, "CRL_CHECKS", (explode, *certificate.CRL_CHECKS))
    findings = check_crl(m.build_crl(chain.issuing))
    assert [(f.severity, f.code) for f in findings] == [(Severity.FATAL, "crl.check_crashed")]
    assert "explode" in findings[0].message


def test_a_certificate_is_no_crl(chain: Chain) -> None:
    with pytest.raises(InputError, match="root.der: not a DER X.509 CRL"):
        check_crl(chain.root.der, subject="root.der")
