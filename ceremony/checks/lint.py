"""`ceremony lint`: certificates and CRLs from files or folders, each checked against a profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import pem

from ceremony.checks.certificate import check_certificate
from ceremony.checks.findings import Finding, Severity, failing
from ceremony.der import signature_name
from ceremony.errors import InputError
from ceremony.profiles import ResolvedProfile, available_profiles, get_profile

SUFFIXES = {".pem", ".crt", ".cer", ".der", ".crl"}
MAX_FILE_BYTES = 16 << 20


@dataclass
class LintItem:
    path: str
    kind: str  # "certificate" | "crl"
    profile: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(failing(self.findings))


@dataclass
class LintReport:
    items: list[LintItem]

    @property
    def exit_code(self) -> int:
        return 1 if any(item.failed for item in self.items) else 0

    def counts(self) -> dict[str, int]:
        every = [f for item in self.items for f in item.findings]
        return {
            "certificates": sum(i.kind == "certificate" for i in self.items),
            "crls": sum(i.kind == "crl" for i in self.items),
            "with_errors": sum(i.failed for i in self.items),
            "warnings": sum(f.severity == Severity.WARNING for f in every),
            "notices": sum(f.severity == Severity.NOTICE for f in every),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "summary": self.counts(),
            "items": [
                {"path": i.path, "kind": i.kind, "profile": i.profile, "findings": [f.to_json() for f in i.findings]}
                for i in self.items
            ],
        }

    def render(self) -> str:
        lines = [str(f) for item in self.items for f in item.findings if f.severity >= Severity.NOTICE]
        c = self.counts()
        lines.append(
            f"{c['certificates']} certificates, {c['crls']} CRLs: {c['with_errors']} with errors, "
            f"{c['warnings']} warnings, {c['notices']} notices"
        )
        return "\n".join(lines)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return found


def _documents(path: Path) -> list[tuple[str, bytes]]:
    """(kind, DER) for every certificate or CRL in the file; anything else → InputError."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB; not a certificate file")
    data = path.read_bytes()
    if pem.detect(data):
        try:
            blocks = [(label, bytes(der)) for label, _, der in pem.unarmor(data, multiple=True)]
        except ValueError as exc:
            raise InputError(f"{path}: malformed PEM") from exc
        kinds = {"CERTIFICATE": "certificate", "X509 CRL": "crl"}
        out = [(kinds[label], der) for label, der in blocks if label in kinds]
        if not out:
            raise InputError(f"{path}: holds no CERTIFICATE or X509 CRL block")
        return out
    if data[:1] != b"\x30":
        raise InputError(f"{path}: neither PEM nor DER; not a certificate or CRL")
    return [("crl" if _is_crl(data) else "certificate", data)]


def _is_crl(der: bytes) -> bool:
    try:
        asn1_crl.CertificateList.load(der, strict=True)["tbs_cert_list"]["this_update"].native  # noqa: B018
    except (ValueError, TypeError, KeyError):
        return False
    return True


def check_crl(der: bytes, subject: str) -> list[Finding]:
    """DOMAIN.md profile E (minimal): v2, ECDSA with absent parameters, nextUpdate, cRLNumber, AKI."""
    try:
        crl = asn1_crl.CertificateList.load(der, strict=True)
        tbs = crl["tbs_cert_list"]
        extensions = {e["extn_id"].dotted for e in tbs["crl_extensions"]}
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{subject}: not a DER X.509 CRL") from exc
    findings = []
    if tbs["version"].native != "v2":
        findings.append(Finding(Severity.ERROR, "crl.version", "CRL is not v2", subject))
    name = signature_name(crl["signature_algorithm"]["algorithm"].dotted)
    if name != "ecdsa-with-SHA256":
        findings.append(Finding(Severity.ERROR, "crl.signature.algorithm", f"CRL is signed with {name}", subject))
    if crl["signature_algorithm"]["parameters"].dump() not in (b"",):
        findings.append(
            Finding(
                Severity.ERROR,
                "crl.signature.params_not_absent",
                "CRL signature AlgorithmIdentifier carries parameters (RFC 5758 3.2)",
                subject,
            )
        )
    if tbs["next_update"].native is None:
        findings.append(Finding(Severity.ERROR, "crl.next_update.missing", "nextUpdate is absent", subject))
    for oid, code in (("2.5.29.20", "crl.number.missing"), ("2.5.29.35", "crl.aki.missing")):
        if oid not in extensions:
            findings.append(Finding(Severity.ERROR, code, f"extension {oid} is absent", subject))
    return findings


def _classify(der: bytes, subject: str) -> tuple[str, list[Finding]]:
    """The profile the certificate fits best (fewest errors, then warnings), and its findings."""
    best: tuple[tuple[int, int], str, list[Finding]] | None = None
    for name in available_profiles():
        findings = check_certificate(der, get_profile(name), subject=subject)
        score = (len(failing(findings)), sum(f.severity == Severity.WARNING for f in findings))
        if best is None or score < best[0]:
            best = (score, name, findings)
    assert best is not None
    _, name, findings = best
    return name, [Finding(Severity.INFO, "lint.profile_chosen", f"classified as {name}", subject), *findings]


def lint_paths(paths: list[Path], profile: str | None) -> LintReport:
    """Lint every certificate and CRL under ``paths`` (against ``profile``, or the best-fitting one)."""
    resolved: ResolvedProfile | None = get_profile(profile) if profile else None
    items: list[LintItem] = []
    for path in _files(paths):
        documents = _documents(path)
        for index, (kind, der) in enumerate(documents):
            subject = str(path) if len(documents) == 1 else f"{path}#{index + 1}"
            if kind == "crl":
                items.append(LintItem(subject, kind, None, check_crl(der, subject)))
            elif resolved is not None:
                items.append(LintItem(subject, kind, resolved.name, check_certificate(der, resolved, subject=subject)))
            else:
                name, findings = _classify(der, subject)
                items.append(LintItem(subject, kind, name, findings))
    if not items:
        raise InputError("no certificate or CRL files found in " + ", ".join(str(p) for p in paths))
    return LintReport(items)
