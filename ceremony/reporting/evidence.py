"""Evidence packs: everything an assessor needs, hashed into a manifest signed by the compliance officer.

``build_pack`` runs the control checks, gathers the evidence (transcripts and attestations, journal,
CA certificates and CRLs, executed ceremony notebooks and their PDFs, findings, catalogue and policy
parameters, an inventory snapshot, the token's key attributes, tool versions), writes
``evidence-index.json`` over it, runs notebook 80 (report mode) whose PDF quotes that index's fingerprint, prints
the report as a PDF/A-3b carrying findings.json, the index and the CA certificates as associated files, signed by the
officer (PAdES, with the certificate the register names for their key: :func:`finish_report`), and finally writes
``manifest.json`` over every file, the report included, signed (``manifest.json.sig``, DER ECDSA/Ed25519 over the
file's bytes) by the key the participant register names for the officer.

``verify_pack`` checks every hash and size, that no file was added, and the signature: against a
trusted public key, or, without one, against the key the pack carries (whose fingerprint the caller
must compare with the published one). A pack can be checked with sha256sum, openssl, find and comm alone (its
README says how).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from ceremony.clock import current
from ceremony.compliance.pack import (
    MANIFEST,
    MANIFEST_TOKEN,
    REPORT_PDF,
    SIGNATURE,
    SIGNER,
    attachment_path,
    fingerprint_words,
)
from ceremony.compliance.pdf_signature import SIGNER_CERTIFICATE
from ceremony.errors import CeremonyError, InputError, StateError
from ceremony.fs import create, make_dirs, open_regular, read_regular, write_once
from ceremony.keys.personal import PersonalKey, TokenRef, person_pin
from ceremony.procedures.attestation import key_fingerprint, signing_key
from ceremony.record.manifest import file_list
from ceremony.record.timestamps import (
    CHECKPOINT_TOKENS,
    PACK_CHAIN,
    TRANSCRIPT_FILES,
    Authority,
    Stamp,
    StampReport,
    request_stamp,
    stamp_pending,
    workspace_authority,
)
from ceremony.record.transcript import reading
from ceremony.record.workspace import Workspace
from ceremony.reporting.pdf import Attached, PrintedDocument, archival_pdf, render_archival_pdf

if TYPE_CHECKING:
    from ceremony.reporting.signature import ReportSigner, SignedReport

#: Every evidence file with its SHA-256 and size, written before the report, which quotes its fingerprint: every file
#: of the pack but the report (report.pdf and report/, which quote the index), SHA256SUMS and the manifest.
EVIDENCE_INDEX = "evidence-index.json"
REPORT_NOTEBOOK = "80-compliance-evidence-pack.ipynb"
PACKAGES = (
    "cryptography",
    "python-pkcs11",
    "asn1crypto",
    "pandas",
    "pyarrow",
    "papermill",
    "nbconvert",
    "SQLAlchemy",
    "psycopg",
    "shamir-mnemonic",
    "matplotlib",
    "pydantic",
)


def parse_period(text: str | None) -> tuple[datetime | None, datetime | None]:
    """``FROM..TO`` (dates, inclusive; either side may be empty) as UTC bounds."""
    if not text:
        return None, None
    if ".." not in text:
        raise InputError(f"--period: {text!r} is not FROM..TO (e.g. 2026-01-01..2026-12-31)")
    start, _, end = text.partition("..")
    try:
        since = datetime.combine(date.fromisoformat(start), time.min, timezone.utc) if start else None
        until = datetime.combine(date.fromisoformat(end), time.max, timezone.utc) if end else None
    except ValueError:
        raise InputError(f"--period: {text!r}: dates are YYYY-MM-DD") from None
    if since and until and since > until:
        raise InputError(f"--period: {text!r} ends before it begins")
    return since, until


def _signer(
    ws: Workspace, person: str | None, key_path: Path | None, token: TokenRef | None = None
) -> tuple[str, PersonalKey]:
    """The compliance officer and their key: on their own token (``token``; its PIN from
    :func:`ceremony.keys.personal.person_pin`), else a key file (for trying the tool only)."""
    from ceremony.model.people import default_register, load_register

    register = load_register(default_register(ws.root))
    if person is None:
        officers = [pid for pid, p in register.people.items() if "compliance-officer" in p.roles]
        if len(officers) != 1:
            raise InputError(
                f"--as: name the compliance officer who signs (registered: {', '.join(officers) or 'none'})"
            )
        person = officers[0]
    registered = register.people.get(person)
    if registered is None or "compliance-officer" not in registered.roles:
        raise InputError(f"--as: {person} is not registered as a compliance officer")
    if token is not None:
        return person, signing_key(person, register, token=token, pin=person_pin(person, token.token_label))
    key_file = key_path or ws.secrets_dir / "attestation" / f"{person}.key"
    if not key_file.is_file():
        raise InputError(f"--key: no key file {key_file}; sign with your own token (--token LABEL) or --key FILE")
    return person, signing_key(person, register, key_file=key_file)


@dataclass
class PackResult:
    directory: Path
    verdict: str
    findings: int
    signer: str
    fingerprint: str
    words: str
    pdfs: list[Path] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    #: live, or what a demo, rehearsal or test workspace is (its pack says so wherever the verdict stands)
    workspace_purpose: str = "live"
    #: the real findings by kind (``fatal``, ``fail (critical)``..., ``indeterminate``, ``waived``); passes and
    #: not-applicable results are not findings
    problems: dict[str, int] = field(default_factory=dict)
    #: the RFC 3161 timestamps (None: the workspace names no TSA): the manifest's token or why there is none, and
    #: what the build stamped in the workspace first (:func:`_stamp_manifest`)
    timestamping: dict[str, Any] | None = None
    #: report.pdf's PAdES signature (None: no report.pdf): its level, its timestamp or why it has none
    #: (:class:`ceremony.reporting.signature.SignedReport`)
    report_signature: dict[str, Any] | None = None

    def report_lines(self) -> list[str]:
        """What the build says of report.pdf's signature (nothing without a report.pdf)."""
        signed = self.report_signature
        if signed is None:
            return []
        line = f"report.pdf signed by {self.signer}: PAdES {signed['pades_level']}"
        if signed["timestamp"] is not None:
            return [f"{line}, timestamped by {signed['tsa']} at {signed['timestamp']}"]
        if signed["not_timestamped"] is not None:
            return [f"{line}, NOT timestamped: {signed['not_timestamped']}"]
        return [line]

    def timestamp_lines(self) -> list[str]:
        """What the build says of the manifest's timestamp (nothing when the workspace names no TSA)."""
        if self.timestamping is None:
            return []
        stamped = self.timestamping
        if stamped["manifest_token"] is not None:
            return [f"manifest timestamped by {stamped['tsa']} at {stamped['gen_time']} ({stamped['manifest_token']})"]
        return [
            f"manifest NOT timestamped: {stamped['deferred']}; a token cannot be added to a built pack (build another "
            "when the TSA is in reach)"
        ]

    @property
    def summary(self) -> str:
        """The verdict line: the verdict, then only the real findings, then how many checks ran."""
        found = ", ".join(f"{n} {kind}" for kind, n in self.problems.items()) or "no findings"
        return f"{self.shown_verdict}: {found} ({self.findings} checks)"

    @property
    def shown_verdict(self) -> str:
        """The verdict as printed: a trial workspace's says what the workspace is."""
        return shown_verdict(self.verdict, self.workspace_purpose)

    def to_json(self) -> dict[str, Any]:
        return {
            "evidence_pack": str(self.directory),
            "workspace_purpose": self.workspace_purpose,
            "verdict": self.verdict,
            "findings": self.findings,
            "problems": self.problems,
            "signer": self.signer,
            "manifest_sha256": self.fingerprint,
            "read_aloud": self.words,
            "pdfs": [str(p) for p in self.pdfs],
            "stages_seconds": {k: round(v, 3) for k, v in self.stages.items()},
            **({"timestamping": self.timestamping} if self.timestamping is not None else {}),
            **({"report_signature": self.report_signature} if self.report_signature is not None else {}),
        }


def shown_verdict(verdict: str, purpose: str) -> str:
    """A verdict as printed: a demo, rehearsal or test workspace's says what the workspace is."""
    return verdict if purpose == "live" else f"{verdict} - {purpose.upper()} WORKSPACE, not a live PKI"


#: Where each kind of evidence a control reads stands in a pack.
EVIDENCE_IN_PACK = {
    "transcripts": "transcripts/*.jsonl", "attestations": "transcripts/*.attestations.jsonl",
    "journal": "journal.jsonl", "inventory": "inventory/*.parquet", "people": "registers/people.yaml",
    "crls": "artifacts/crls/", "artifacts": "artifacts/", "token": "token-keys.json",
    "policy": "policy-parameters.yaml",
    "workspace": "findings.json (secrets/ and share-cards/ as found, by name only)",
}  # fmt: skip


def traceability(catalogue: Any, findings: list[Any]) -> list[dict[str, str]]:
    """Requirement -> evidence: each control's check, the pack files it rests on, and its findings."""
    rows = []
    for control in catalogue.controls:
        files = [EVIDENCE_IN_PACK.get(kind, f"registers/{kind.removeprefix('registers.')}.yaml")
                 for kind in control.evidence]  # fmt: skip
        ids = [f.id for f in findings if f.control == control.id and f.outcome not in ("pass", "not-applicable")]
        rows.append({"control": control.id, "requirement": control.check, "evidence in this pack": ", ".join(files),
                     "findings": ", ".join(ids) or "-"})  # fmt: skip
    return rows


def _journal_anchor(ws: Workspace, out: Path) -> dict[str, Any]:
    """The journal's head and last signed checkpoint as the pack carries them (its copy of the journal and of
    checkpoints.jsonl), for the signed manifest: a later edit of the journal contradicts this pack."""
    from ceremony.fs import read_regular, write_once
    from ceremony.model.events import Event
    from ceremony.record.checkpoints import CHECKPOINTS_FILE, workspace_identity
    from ceremony.record.transcript import read_entries, verify_chain

    source = ws.root / CHECKPOINTS_FILE
    if source.is_file():
        with reading(source):
            data = read_regular(source, 1 << 30, "checkpoint log")
        write_once(out / CHECKPOINTS_FILE, data, what="pack files")
    status = verify_chain(out / "journal.jsonl")
    entries = read_entries(out / "journal.jsonl")
    checkpoints = [e for e in entries if e.get("event") == Event.JOURNAL_CHECKPOINT]
    last = checkpoints[-1] if checkpoints else None
    return {
        "workspace": workspace_identity(entries),
        "entries": len(entries),
        "head": entries[-1]["hash"] if entries else None,
        "chain_ok": status.ok,
        "last_checkpoint": None
        if last is None
        else {k: last.get(k) for k in ("checkpoint", "entries", "head", "signed_at", "key_label", "signature")},
    }


def _previous_findings(ev: Any, current: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """The findings of this workspace's newest earlier pack: a pack of another workspace in the same folder (its
    journal begins with another creation entry, whatever its folder is called) is never compared with."""
    from ceremony.compliance.controls.records import earlier_packs

    packs = [p for p in earlier_packs(ev) if p.resolve() != current and (p / MANIFEST).is_file()]
    if not packs:
        return None, []
    data = json.loads((packs[-1] / "findings.json").read_text(encoding="utf-8"))
    return packs[-1].name, list(data.get("findings", []))


def _runs_for(ws: Workspace, reports: Path, since: datetime | None, until: datetime | None) -> list[Path]:
    """Executed notebooks whose parameters name this workspace (the ceremonies run as notebooks), run in
    the period (a run directory's name begins with its UTC start)."""
    import yaml

    found = []
    for params in sorted((reports / "runs").glob("*/parameters.yaml")):
        try:
            values = yaml.safe_load(params.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        where = values.get("workspace")
        try:
            started = datetime.strptime(params.parent.name.split("-", 1)[0], "%Y%m%dT%H%M%S.%fZ")
        except ValueError:
            continue
        started = started.replace(tzinfo=timezone.utc)
        if (since and started < since) or (until and started > until):
            continue
        if where and Path(str(where)).resolve() == ws.root and "rehearsal" not in params.parent.name:
            found += sorted(p for p in params.parent.glob("*.ipynb"))
    return [p for p in found if not p.name.startswith(("70-", "80-"))]


def build_pack(
    ws: Workspace,
    *,
    reports: Path | None = None,
    period: str | None = None,
    person: str | None = None,
    key_path: Path | None = None,
    token: TokenRef | None = None,
    pdf: bool = True,
    now: datetime | None = None,
) -> PackResult:
    """Build ``<reports>/evidence/<UTC>/`` (see the module docstring; ``reports`` defaults to the workspace's own,
    ``<workspace>/reports``). The compliance officer signs with the key on their own token (``token``), or with a
    key file (``key_path``; for trying the tool only)."""
    import time as stopwatch

    from ceremony.compliance.assessment import compare, control_table, run_checks, verdict
    from ceremony.compliance.sources import Evidence
    from ceremony.model.catalogue import catalogue_path, load_catalogue
    from ceremony.model.config import data_dir
    from ceremony.record.frames import write_parquet
    from ceremony.reporting.notebooks import notebooks_dir, run_notebook

    reports = ws.reports_dir if reports is None else reports
    since, until = parse_period(period)
    signer, key = _signer(ws, person, key_path, token)  # refused before anything is written
    officer = _report_signer(ws, signer, key, now or ws.clock.now()) if pdf else None  # so is a missing certificate
    authority = workspace_authority(ws)  # a TSA chain that cannot be read is refused before anything is written
    stamped = stamp_pending(ws)  # an online step: seals and checkpoints made offline get their tokens, then travel
    sources = _workspace_evidence(ws)  # a planted link is refused before anything is written too
    now = now or ws.clock.now()
    root = reports / "evidence"
    for where in (reports, root):
        if os.path.islink(where) and not where.exists():  # a pack is never written through a dangling link
            raise InputError(f"--reports: {where} is a dangling symbolic link; remove it or name another directory")
    out = root.resolve() / now.strftime("%Y%m%dT%H%M%S.%fZ")
    _new_pack_dir(out)
    stages: dict[str, float] = {}
    mark = stopwatch.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        stages[name] = stopwatch.perf_counter() - mark
        mark = stopwatch.perf_counter()

    catalogue = load_catalogue()
    ev = Evidence(ws, as_of=until or now, since=since, until=until, pack_folders=(root,))
    findings = run_checks(catalogue, ev)
    stage("checks")
    workers = ev.cache.get("certificate_pass_seconds", 0.0)
    stages["checks: every certificate's signature and lint, in workers"] = workers
    stages["checks: the other 35 controls (frames, transcripts, registers)"] = stages.pop("checks") - workers
    result = verdict(findings, ev.policy.compliance.verdict)
    previous_name, previous = _previous_findings(ev, out)
    changes = compare(findings, previous)
    titles = {c.id: c for c in catalogue.controls}
    _write(
        out,
        "findings.json",
        json.dumps(
            {
                "as_of": ev.as_of.isoformat(),
                "period": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None},
                "scope": sorted(ev.scope),
                "workspace_purpose": ws.config.purpose,
                "verdict": {
                    "verdict": result.verdict,
                    "because": result.because,
                    "rule": result.rule,
                    "counted": result.counted,
                },
                "previous_pack": previous_name,
                "changes": changes,
                "controls": control_table(findings, catalogue),
                "traceability": traceability(catalogue, findings),
                "findings": [f.to_json() | {"title": titles[f.control].title} for f in findings],
            },
            indent=1,
        ),
    )
    with create(out / "findings.csv", text=True, what="pack files", root=out) as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "control", "title", "severity", "outcome", "waived", "subject", "message", "evidence"])
        for f in findings:
            writer.writerow(
                [
                    f.id,
                    f.control,
                    titles[f.control].title,
                    f.severity,
                    f.outcome,
                    bool(f.waived),
                    f.subject,
                    f.message,
                    " ".join(f.evidence),
                ]
            )
    _copy_file(catalogue_path(), out, "controls.yaml")
    _copy_file(data_dir() / "policy" / "s1spkm-parameters.yaml", out, "policy-parameters.yaml")
    if authority is not None:  # listed in the manifest: what the pack's timestamp tokens are verified under
        _write(out, PACK_CHAIN, authority.chain.pem())
    make_dirs(out / "registers", root=out)
    for name in ("documents", "assessments", "incidents", "hsms", "waivers"):
        if (ws.root / "registers" / f"{name}.yaml").is_file():  # the workspace's own; examples never stand in
            _copy_file(ws.root / "registers" / f"{name}.yaml", out, f"registers/{name}.yaml", ws.root)
    from ceremony.model.people import default_register

    register = default_register(ws.root)
    _copy_file(register, out, "registers/people.yaml", ws.root if register.is_relative_to(ws.root) else None)
    stage("catalogue, policy and registers")

    write_parquet(ev.frames, out / "inventory")
    stage("inventory snapshot")

    make_dirs(out / "transcripts", root=out)
    recorded_cas = _recorded_ca_certificates(ws)
    for source, rel in sources:  # transcripts, journal, CA certificates and CRLs: read without following a link
        if rel in recorded_cas:  # the CA certificate on record; a file that differs is LOG-04's finding, not evidence
            _write(out, rel, recorded_cas.pop(rel))
        else:
            _copy_file(source, out, rel, ws.root)
    for rel, pem in recorded_cas.items():  # a CA certificate file gone from the artifacts: the record still travels
        _write(out, rel, pem)
    anchor = _journal_anchor(ws, out)
    stage("transcripts, journal and artifacts")

    _write(out, "token-keys.json", json.dumps(_token_keys(ws), indent=1))
    _write(out, "versions.json", json.dumps(_versions(), indent=1))
    stage("token attributes and versions")

    pdfs: list[Path] = []
    signed: SignedReport | None = None  # report.pdf's signature
    runs = _runs_for(ws, reports, since, until)
    if runs:
        make_dirs(out / "notebooks", root=out)
    for executed in runs:
        target = out / "notebooks" / f"{executed.parent.name}.ipynb"
        _copy_file(executed, out, target.relative_to(out).as_posix())
        if pdf:
            pdfs.append(_notebook_pdf(target, out, now))
    stage("ceremony notebooks and their PDFs")

    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write(out, SIGNER, public)
    if officer is not None:  # what report.pdf's signature is verified under
        _write(out, SIGNER_CERTIFICATE, officer.certificate.public_bytes(serialization.Encoding.PEM))
    fingerprint = key_fingerprint(key.public_key())
    readme = _readme(signer, fingerprint, ws.mark, notebooks=bool(runs), timestamped=authority is not None,
                     signed_report=officer is not None)  # fmt: skip
    _write(out, "README.md", readme)
    evidence_digest = evidence_index(out)
    _write(out, EVIDENCE_INDEX, evidence_digest)
    run = run_notebook(
        notebooks_dir() / REPORT_NOTEBOOK,
        {
            "workspace": str(ws.root),
            "pack": str(out),
            "signer": signer,
            "evidence_sha256": hashlib.sha256(evidence_digest).hexdigest(),
            "evidence_words": fingerprint_words(evidence_digest),
        },
        reports_dir=reports,
        progress=False,
    )
    make_dirs(out / "report", root=out)
    report = out / "report" / REPORT_NOTEBOOK
    _copy_file(run.executed, out, f"report/{REPORT_NOTEBOOK}")
    stage("report notebook")
    if pdf:
        document = report_document(
            out, signer=_signer_name(ws, signer), verdict=shown_verdict(result.verdict, ws.config.purpose),
            controls=[c.id for c in catalogue.controls], created=now,
        )  # fmt: skip
        assert officer is not None  # made with pdf
        finished, signed = finish_report(out, report, document, officer, authority)
        pdfs.insert(0, finished)
    stage("report PDF")

    # report.pdf is final from here on: SHA256SUMS and the signed manifest cover it as it stands.
    files = file_list(out, skip=(MANIFEST, SIGNATURE, "SHA256SUMS"))
    _write(out, "SHA256SUMS", "".join(f"{e['sha256']}  {e['path']}\n" for e in files))
    files = file_list(out, skip=(MANIFEST, SIGNATURE))
    manifest = {
        "format": "s1spki-evidence-pack/1",
        "created": now.isoformat(),
        "workspace": str(ws.root),
        "workspace_purpose": ws.config.purpose,
        "period": period or "all",
        "verdict": result.verdict,
        "signer": {
            "person": signer,
            "key": key_fingerprint(key.public_key()),
            "key_kind": key.kind,
            "key_origin": key.origin,
        },
        "evidence_index_sha256": hashlib.sha256(evidence_digest).hexdigest(),
        "journal": anchor,
        "files": files,
    }
    data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    _write(out, MANIFEST, data)
    _write(out, SIGNATURE, key.sign(data))
    timestamping = _stamp_manifest(out, authority, data, stamped)
    stage("manifest and signature")
    return PackResult(
        out,
        result.verdict,
        len(findings),
        signer,
        hashlib.sha256(data).hexdigest(),
        fingerprint_words(data),
        pdfs,
        stages,
        ws.config.purpose,
        problems(findings, catalogue),
        timestamping,
        report_signature=signed.to_json() if signed is not None else None,
    )


def problems(findings: list[Any], catalogue: Any) -> dict[str, int]:
    """The findings that are problems, by kind, worst first: fatal (a check that crashed), failures by their
    control's severity, indeterminate, then waived ones; passes and not-applicable results are not counted."""
    severities = {c.id: c.severity for c in catalogue.controls}
    counted: dict[str, int] = {}
    for f in findings:
        if f.waived:
            kind = "waived"
        elif f.outcome == "fail":
            kind = f"failed ({severities.get(f.control, 'unknown')})"
        elif f.outcome in ("fatal", "indeterminate"):
            kind = f.outcome
        else:
            continue
        counted[kind] = counted.get(kind, 0) + 1
    order = ["fatal", *(f"failed ({s})" for s in ("critical", "major", "minor")), "indeterminate", "waived"]
    return dict(sorted(counted.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _recorded_ca_certificates(ws: Workspace) -> dict[str, bytes]:
    """Each CA's certificate as the inventory holds it (PEM), by its path in the pack: a pack carries the
    certificates on record, so that a forged file in artifacts/cas/ never reaches a signed pack."""
    from ceremony.record.crossref import stored_cas
    from ceremony.record.inventory import pem_certificate

    return {f"artifacts/cas/{ca.name}.pem": pem_certificate(ws.inventory.ca_certificate_der(ca.name))
            for ca in stored_cas(ws.inventory)}  # fmt: skip


def _workspace_evidence(ws: Workspace) -> list[tuple[Path, str]]:
    """The workspace files a pack carries, with their paths in it: transcripts, the journal, CA certificates and
    CRLs. A symbolic link among them is refused, never followed: it could carry any file (a deposited share's
    words) into the signed pack."""

    def refuse(path: Path) -> None:
        if os.path.islink(path):
            raise StateError(
                f"{path} is a symbolic link; an evidence pack never follows one (it could carry any file into the "
                "signed pack): replace it with the real file"
            )

    found: list[tuple[Path, str]] = []
    if ws.transcripts_dir.is_dir():
        refuse(ws.transcripts_dir)
        for path in sorted(ws.transcripts_dir.iterdir()):
            refuse(path)
            if (path.suffix in (".jsonl", ".json") or path.name.endswith(TRANSCRIPT_FILES)) and path.is_file():
                found.append((path, f"transcripts/{path.name}"))
    tokens = ws.root / CHECKPOINT_TOKENS  # the journal checkpoints' timestamp tokens (ceremony.record.timestamps)
    for where in (tokens.parent, tokens):
        refuse(where)
    for path in sorted(tokens.glob("checkpoint-*.tsr")) if tokens.is_dir() else []:
        refuse(path)
        found.append((path, f"{CHECKPOINT_TOKENS}/{path.name}"))
    refuse(ws.journal_path)
    found.append((ws.journal_path, "journal.jsonl"))
    refuse(ws.artifacts_dir)
    for sub in ("cas", "crls"):
        top = ws.artifacts_dir / sub
        refuse(top)
        if not top.is_dir():
            continue
        for parent, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted((*dirs, *files)):
                refuse(Path(parent) / name)
            for name in sorted(files):
                path = Path(parent) / name
                found.append((path, path.relative_to(ws.root).as_posix()))
    return found


def _new_pack_dir(out: Path) -> None:
    """The pack's directory, new, its parents reached without following a link."""
    make_dirs(out.parent)
    try:
        os.mkdir(out, 0o755)
    except FileExistsError:
        raise StateError(f"{out} exists; an evidence pack is written to a new directory") from None
    os.chmod(out, 0o755, follow_symlinks=False)  # noqa: S103 - a pack is public evidence; 0755 whatever the umask


def _write(pack: Path, rel: str, data: str | bytes) -> None:
    """A new file of the pack (exclusive, never through a link, 0644 whatever the umask)."""
    write_once(pack / rel, data.encode("utf-8") if isinstance(data, str) else data, what="pack files", root=pack)


def _stamp_manifest(
    pack: Path, authority: Authority | None, manifest: bytes, stamped: StampReport
) -> dict[str, Any] | None:
    """The manifest's RFC 3161 token, ``manifest.json.tsr`` (outside the manifest, like its signature), when the
    workspace names a TSA: what the build's ``timestamping`` says (the token, or why there is none: a TSA out of reach
    does not stop the build, and no token can be added to the pack later), with what it stamped in the workspace."""
    if authority is None:
        return None
    stamp = request_stamp(authority, manifest)
    if isinstance(stamp, Stamp):
        _write(pack, MANIFEST_TOKEN, stamp.token)
    return {
        "tsa": authority.chain.name,
        "manifest_token": str(pack / MANIFEST_TOKEN) if isinstance(stamp, Stamp) else None,
        "gen_time": stamp.gen_time.isoformat().replace("+00:00", "Z") if isinstance(stamp, Stamp) else None,
        "deferred": None if isinstance(stamp, Stamp) else stamp.reason,
        "workspace": stamped.to_json(),
    }


def _copy_file(source: Path, pack: Path, rel: str, source_root: Path | None = None) -> None:
    """Copy ``source`` into the pack at ``rel``: read without following a link (nor, below ``source_root``,
    a linked directory), written exclusively (see :mod:`ceremony.fs`); a log while no append is under way."""
    with (
        reading(source),
        open_regular(source, "evidence file", root=source_root) as src,
        create(pack / rel, what="pack files", root=pack) as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)


def evidence_index(pack: Path) -> bytes:
    """``evidence-index.json``: every file of the pack so far with its SHA-256 and size (the report, SHA256SUMS and
    the manifest come after it; the report quotes its fingerprint and carries it)."""
    excluded = [REPORT_PDF, "report/", "SHA256SUMS", MANIFEST, SIGNATURE, EVIDENCE_INDEX]
    index = {"format": "s1spki-evidence-index/1", "excludes": excluded, "files": file_list(pack)}
    return json.dumps(index, indent=1).encode("utf-8")


def report_attachments(pack: Path) -> tuple[Attached, ...]:
    """The files report.pdf carries as PDF/A-3 associated files: findings.json (``Data``: what its tables show),
    the evidence index and every CA certificate on record (``Supplement``), each named so that
    :func:`ceremony.compliance.pack.attachment_path` finds it in the pack again."""
    chosen = [("findings.json", "Data", "every finding of this assessment (the report's tables)"),
              (EVIDENCE_INDEX, "Supplement", "every evidence file of the pack with its SHA-256")]  # fmt: skip
    cas = sorted((pack / "artifacts" / "cas").glob("*.pem")) if (pack / "artifacts" / "cas").is_dir() else []
    chosen += [(p.name, "Supplement", f"the certificate of CA {p.stem} on record") for p in cas]
    attached = []
    for name, relationship, what in chosen:
        data = read_regular(pack / attachment_path(name), 1 << 30, "pack file", root=pack)
        attached.append(Attached(name, data, f"{attachment_path(name)}: {what}", relationship))
    return tuple(attached)


def report_document(
    pack: Path, *, signer: str, verdict: str, controls: list[str], created: datetime
) -> PrintedDocument:
    """What report.pdf says about itself: its title, the running header (the pack and its verdict), the officer who
    signs as its author, a subject, the control ids as keywords, when it was made, and its attachments."""
    return PrintedDocument(
        title=f"S1SPKM assessment report, evidence pack {pack.name}",
        header=f"Evidence pack {pack.name} \u00b7 verdict: {verdict}",
        author=signer,
        subject=f"Assessment against the S1SPKM control catalogue ({len(controls)} controls): {verdict}",
        keywords=tuple(controls),
        created=created,
        attachments=report_attachments(pack),
        report=True,
    )


def finish_report(
    pack: Path, executed: Path, document: PrintedDocument, officer: ReportSigner, authority: Authority | None
) -> tuple[Path, SignedReport]:
    """The one place report.pdf is made: the executed report notebook printed as PDF/A-3b (always WeasyPrint,
    through the print template), with ``document``'s metadata and associated files, signed by the compliance officer
    (PAdES, :mod:`ceremony.reporting.signature`: B-LT when ``authority`` stamps it, else B-B), then written once,
    mode 0644 like every file of the pack. The caller writes SHA256SUMS and the signed manifest over report.pdf as
    this function leaves it."""
    from ceremony.reporting.signature import sign_report

    rendered = archival_pdf(executed, document, hide_code=True)
    reason = f"the S1SPKM assessment report of evidence pack {pack.name}, signed by the compliance officer"
    signed = sign_report(rendered, officer, at=document.created or current().now(), authority=authority, reason=reason)
    _write(pack, REPORT_PDF, signed.data)
    return pack / REPORT_PDF, signed


def _report_signer(ws: Workspace, person: str, key: PersonalKey, at: datetime) -> ReportSigner:
    """The officer as report.pdf's signature needs them: their key and the certificate the register names for it."""
    from ceremony.model.people import default_register
    from ceremony.reporting.signature import report_signer

    return report_signer(default_register(ws.root), person, key, at)


def _notebook_pdf(notebook: Path, pack: Path, created: datetime) -> Path:
    """An executed ceremony notebook of the pack as a PDF/A-3b beside it, its code shown, through the print template."""
    run = notebook.stem
    document = PrintedDocument(
        title=f"Ceremony notebook {run}",
        header=f"Evidence pack {pack.name} \u00b7 notebooks/{notebook.name}",
        subject=f"The executed ceremony notebook {notebook.name} as the evidence pack {pack.name} carries it",
        created=created,
    )
    return render_archival_pdf(notebook, notebook.with_suffix(".pdf"), document)


def _signer_name(ws: Workspace, person: str) -> str:
    """The officer who signs as the register names them: ``Name (id)``."""
    from ceremony.model.people import default_register, load_register

    registered = load_register(default_register(ws.root)).people.get(person)
    return f"{registered.name} ({person})" if registered is not None else person


def _token_keys(ws: Workspace) -> dict[str, Any]:
    """Each key on the workspace's token with its PKCS#11 attributes, read now (not from a transcript)."""
    try:
        store = ws.key_store
        labels = sorted(store.labels())
        return {
            "token": ws.token_label,
            "key_store": ws.config.key_store.kind,
            "keys": {label: store.attributes(label).record() for label in labels},
        }
    except CeremonyError as exc:
        return {"token": ws.token_label, "error": f"the token could not be read: {exc.message}"}


def _versions() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in ("s1spki-ceremony", *PACKAGES):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": packages}


def _readme(
    signer: str,
    fingerprint: str,
    mark: str | None = None,
    *,
    notebooks: bool = True,
    timestamped: bool = False,
    signed_report: bool = False,
) -> str:
    # fmt: off
    pades = "\n".join((
        "",
        f"    # {6 + timestamped}. report.pdf's PAdES signature (pdfsig from poppler-utils). An intact report",
        '    #    prints "Total document signed" and "Signature Validation: Signature is Valid."; the officer\'s',
        '    #    certificate is self-signed: "Certificate Validation: Certificate issuer is unknown." (years on,',
        '    #    "Certificate has Expired": pdfsig reads this machine\'s clock, while `ceremony evidence verify`',
        "    #    validates at the signature timestamp's time, or the pack's)",
        f"    pdfsig {REPORT_PDF}",
        f"    #    the certificate that signed it is {SIGNER_CERTIFICATE} (the first two commands print the same",
        "    #    digest), and its key is the published one (the third prints step 1's fingerprint)",
        f'    d=$(mktemp -d); (cd "$d" && pdfsig -dump "$OLDPWD/{REPORT_PDF}" >/dev/null && openssl pkcs7 \\',
        f"      -inform DER -in {REPORT_PDF}.sig0 -print_certs | openssl x509 -outform DER | sha256sum)",
        '    rm -r "$d"',
        f"    openssl x509 -in {SIGNER_CERTIFICATE} -outform DER | sha256sum",
        f"    openssl x509 -in {SIGNER_CERTIFICATE} -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum",
    )) if signed_report else ""
    # fmt: on
    stamping = (
        f"\n    # 6. the manifest's RFC 3161 timestamp (when the pack carries {MANIFEST_TOKEN}: the TSA was in reach)\n"
        f"    openssl ts -verify -data {MANIFEST} -in {MANIFEST_TOKEN} -CAfile {PACK_CHAIN}"
        if timestamped
        else ""
    )
    tokens = (
        f"\nRFC 3161 timestamps: {PACK_CHAIN} (the TSA's chain), {MANIFEST_TOKEN} (outside the manifest, when the TSA\n"
        f"was in reach), transcripts/*.seal.tsr and *.timestamps.log (the seals' tokens, and when each was obtained),\n"
        f"{CHECKPOINT_TOKENS}/ (the journal checkpoints' tokens).\n"
        if timestamped
        else ""
    )
    heading = "" if mark is None else f"**{mark}: nothing in this pack is a live PKI's evidence.**\n\n"
    certificate = f", {SIGNER_CERTIFICATE} (the officer's certificate: report.pdf's signature)" if signed_report else ""
    carried = (
        "notebooks/ (the executed and attended ceremony notebooks and their PDFs)"
        if notebooks
        else "no ceremony notebooks (no run of this workspace in the period)"
    )
    return f"""# S1SPKM evidence pack

{heading}Signed by {signer}, key {fingerprint} (SHA-256 of the DER SubjectPublicKeyInfo).
Compare that fingerprint with the one the compliance officer published before relying on the pack.

## Verify without the workbench

    # 1. the key in signer.pem is the officer's published key
    openssl pkey -pubin -in signer.pem -outform DER | sha256sum
    # 2. the manifest is signed by it (EC keys: ECDSA with SHA-256; RSA keys: PKCS#1 v1.5 with SHA-256)
    openssl dgst -sha256 -verify signer.pem -signature {SIGNATURE} {MANIFEST}
    #    (Ed25519 keys: openssl pkeyutl -verify -pubin -inkey signer.pem -rawin -in {MANIFEST} -sigfile {SIGNATURE})
    # 3. every file is the one the manifest lists (SHA256SUMS is itself listed in the manifest)
    sha256sum -c SHA256SUMS
    grep -A2 '"SHA256SUMS"' {MANIFEST}; sha256sum SHA256SUMS
    # 4. no file was added: sha256sum -c ignores files it does not list, so list what is present but not in the
    #    manifest (bash; prints nothing for an intact pack)
    find . -type f ! -path ./{MANIFEST} ! -path ./{SIGNATURE} ! -path ./{MANIFEST_TOKEN} | cut -c3- \\
      | LC_ALL=C sort | LC_ALL=C comm -23 - <(grep -o '"path": "[^"]*"' {MANIFEST} | cut -d'"' -f4 | LC_ALL=C sort)
    # 5. the files report.pdf carries (PDF/A-3 associated files: findings.json, {EVIDENCE_INDEX}, the CA
    #    certificates) are the pack's own (pdfdetach from poppler-utils; prints nothing when they are)
    d=$(mktemp -d); pdfdetach -saveall -o "$d" {REPORT_PDF}; for f in "$d"/*; do n=${{f##*/}}
      case $n in *.pem) p=artifacts/cas/$n;; *) p=$n;; esac; cmp -s "$f" "$p" || echo "$n: not the pack's $p"
    done; rm -r "$d"{stamping}{pades}

## Verify with the workbench

    ceremony evidence verify . --trust officer-public-key.pem

## Contents

report.pdf (the assessment report, PDF/A-3b, carrying findings.json, {EVIDENCE_INDEX} and the CA
certificates as attachments), report/ (its executed notebook), findings.json and findings.csv,
controls.yaml and policy-parameters.yaml, registers/, inventory/ (Parquet), transcripts/ (with
attestations and seals), journal.jsonl, artifacts/ (CA certificates, CRLs), {carried},
token-keys.json, versions.json, {EVIDENCE_INDEX} (the evidence the report quotes), SHA256SUMS,
{MANIFEST}, {SIGNATURE}, {SIGNER}{certificate}.
{tokens}"""
