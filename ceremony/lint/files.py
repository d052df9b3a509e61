"""`ceremony lint`: certificates and CRLs from files or folders, each checked against a profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem

from ceremony.errors import InputError
from ceremony.lint.certificate import check_crl, check_parsed, is_crl, parse_certificate
from ceremony.lint.findings import Finding, Severity, failing
from ceremony.lint.template import check_certificates
from ceremony.model.profiles import ResolvedProfile, available_profiles, get_profile

SUFFIXES = {".pem", ".crt", ".cer", ".der", ".crl"}
MAX_FILE_BYTES = 16 << 20
_PEM_KINDS = {"CERTIFICATE": "certificate", "X509 CRL": "crl"}


@dataclass
class LintItem:
    """One certificate or CRL: where it came from, the profile used, and its findings."""

    path: str
    kind: str  # "certificate" | "crl"
    profile: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(failing(self.findings))


@dataclass
class LintReport:
    """Every linted item; exit code 1 when any has an ERROR or FATAL finding."""

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

    def render(self, min_severity: Severity = Severity.INFO) -> str:
        """One line per finding at or above ``min_severity``, then the summary line."""
        lines = [str(f) for item in self.items for f in item.findings if f.severity >= min_severity]
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
            raise InputError(f"{path}: malformed PEM ({exc})") from exc
        out = [(_PEM_KINDS[label], der) for label, der in blocks if label in _PEM_KINDS]
        if not out:
            labels = ", ".join(sorted({label for label, _ in blocks})) or "none"
            raise InputError(f"{path}: holds no CERTIFICATE or X509 CRL block (found: {labels})")
        return out
    if data[:1] != b"\x30":
        raise InputError(f"{path}: neither PEM nor DER; not a certificate or CRL")
    return [("crl" if is_crl(data) else "certificate", data)]


def _classify(
    der: bytes, subject: str, profiles: dict[str, ResolvedProfile], now: datetime | None
) -> tuple[str, list[Finding]]:
    """The profile the certificate fits best (fewest errors, then warnings), and its findings."""
    parsed = parse_certificate(der, subject)
    best: tuple[tuple[int, int], str, list[Finding]] | None = None
    for name, profile in profiles.items():
        findings = check_parsed(parsed, profile, subject=subject, now=now)
        score = (len(failing(findings)), sum(f.severity == Severity.WARNING for f in findings))
        if best is None or score < best[0]:
            best = (score, name, findings)
    if best is None:
        raise InputError("no certificate profiles are available to classify against")
    (errors, warnings), name, findings = best
    chosen = Finding(
        Severity.INFO,
        "lint.profile_chosen",
        f"classified as {name} (best fit of {len(profiles)} profiles: {errors} errors, {warnings} warnings)",
        subject,
    )
    return name, [chosen, *findings]


def lint_paths(paths: list[Path], profile: str | None, *, now: datetime | None = None) -> LintReport:
    """Lint every certificate and CRL under ``paths``.

    Args:
        paths: files (any name) or folders (searched recursively for *.pem, *.crt, *.cer, *.der, *.crl).
        profile: the profile every certificate is checked against; None classifies each
            certificate to its best-fitting profile across all profile sets (an INFO finding names it).
        now: the clock for expiry notices (default: the current time).

    Raises:
        InputError: a path is missing, a file holds no certificate or CRL, or the profile is unknown.
    """
    if profile is not None:
        fixed: ResolvedProfile | None = get_profile(profile)
        candidates: dict[str, ResolvedProfile] = {}
    else:
        fixed = None
        candidates = {name: get_profile(name) for name in available_profiles()}
    items: list[LintItem] = []
    #: With one profile, certificates are linted together at the end (the template path; same findings).
    pending: list[tuple[int, str, bytes]] = []
    for path in _files(paths):
        documents = _documents(path)
        for index, (kind, der) in enumerate(documents):
            subject = str(path) if len(documents) == 1 else f"{path}#{index + 1}"
            if kind == "crl":
                items.append(LintItem(subject, kind, None, check_crl(der, subject=subject)))
            elif fixed is not None:
                pending.append((len(items), subject, der))
                items.append(LintItem(subject, kind, fixed.name, []))
            else:
                name, findings = _classify(der, subject, candidates, now)
                items.append(LintItem(subject, kind, name, findings))
    if fixed is not None and pending:
        linted = check_certificates([d for _, _, d in pending], fixed, subjects=[s for _, s, _ in pending], now=now)
        for (at, subject, _), findings in zip(pending, linted.findings, strict=True):
            items[at] = LintItem(subject, "certificate", fixed.name, findings)
    if not items:
        raise InputError("no certificate or CRL files found in " + ", ".join(str(p) for p in paths))
    return LintReport(items)
