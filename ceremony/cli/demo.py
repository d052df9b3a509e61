"""`ceremony demo`: the whole story on a new workspace, with embedded defaults."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError
from ceremony.fs import write_once
from ceremony.issue.single import Issued, issue
from ceremony.keys.personal import FILE_KEY_NOTE, CertificateRequest, load_file_key, self_signed_certificate
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import Finding, failing
from ceremony.model.ceremony_file import load_ceremony, record_approval
from ceremony.model.config import data_dir, load_yaml
from ceremony.model.people import Register, load_register
from ceremony.model.policy import load_policy
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, Usage, subject_name
from ceremony.procedures.attestation import key_fingerprint, participants, sign_transcript
from ceremony.record.batches import batches
from ceremony.record.crls import crls
from ceremony.record.registers import record_registers
from ceremony.record.symmetric_keys import symmetric_keys
from ceremony.record.transcript import read_entries
from ceremony.record.workspace import Workspace, init_workspace
from ceremony.reporting.notebooks import notebooks_dir, run_notebook

DEMO_APPROVER = "bob"  # the register's RA officer
DEMO_ADMINISTRATOR = "alice"  # the register's administrator, who puts register changes on record
DEMO_OFFICER = "victor"  # the register's compliance officer, who signs the evidence pack
ROOT, ISSUING = "s1sp-root", "s1sp-issuing"  # as named in data/ceremonies/{root,issuing}-ca.yaml
TOKEN_LABEL = "s1sp-ca-token"  # noqa: S105 - a label; as named in data/ceremonies/token-init.yaml
#: Demo organisation: a supplier-role S1SP system (RemotePartyRole 02) with a documentation EUI-64.
ORG_EUI64, ORG_ROLE, ORG_NAME = "90B3D51F30000001", "02", "S1SPDEMO"
DEVICE_EUI64_BASE = 0x00DB1234_56780000
USAGES: tuple[Usage, ...] = ("ds", "ka")


@dataclass
class DemoResult:
    workspace: Path
    cas: list[tuple[str, str, Issued]] = field(default_factory=list)
    issued: list[Issued] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    inventory_export: Path | None = None
    key_store: str = ""
    transcripts: list[Path] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    crls: list[Path] = field(default_factory=list)
    symmetric_keys: list[dict[str, str]] = field(default_factory=list)
    evidence_pack: Path | None = None
    verdict: str = ""
    pdfs: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "key_store": self.key_store,
            "cas": [{"name": name, "role": role, "certificate": str(i.artifact)} for name, role, i in self.cas],
            "issued": [{"profile": i.record.profile, "certificate": str(i.artifact)} for i in self.issued],
            "inventory_export": str(self.inventory_export),
            "transcripts": [str(p) for p in self.transcripts],
            "runs": [str(p) for p in self.runs],
            "batches": self.batches,
            "crls": [str(p) for p in self.crls],
            "symmetric_keys": self.symmetric_keys,
            "evidence_pack": str(self.evidence_pack) if self.evidence_pack else None,
            "verdict": self.verdict,
            "pdfs": [str(p) for p in self.pdfs],
        }


def next_steps(result: DemoResult) -> list[str]:
    """What to open next, the demo's last lines: the report, the inventory in JupyterLab, the checks."""
    ws = result.workspace
    steps: list[tuple[str, str]] = []
    if result.pdfs:
        steps.append(("read the report:", str(result.pdfs[0])))
    elif result.evidence_pack:
        steps.append(("read the findings:", str(result.evidence_pack / "findings.csv")))
    steps += [
        ("explore the inventory:", f"make lab NOTEBOOK=notebooks/70-inventory-explorer.ipynb WORKSPACE={ws}"),
        ("run the checks:", f"ceremony --workspace {ws} checks run"),
    ]
    return ["next:", *(f"  {what:<23}{how}" for what, how in steps)]


def demo_workspace_dir(base: Path, now: datetime) -> Path:
    return base / "workspaces" / now.strftime("demo-%Y%m%dT%H%M%S.%fZ")


def _csr(key: ec.EllipticCurvePrivateKey, subject: x509.Name) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


#: The ceremonies of the demo, in order: (notebook, {parameter: example ceremony file}).
CEREMONY_RUNS: tuple[tuple[str, dict[str, str]], ...] = (
    ("05-token-init-ceremony.ipynb", {"ceremony_file": "token-init.yaml"}),
    ("10-root-ca-ceremony.ipynb", {"ceremony_file": "root-ca.yaml"}),
    ("20-issuing-ca-ceremony.ipynb", {"ceremony_file": "issuing-ca.yaml"}),
    ("50-symmetric-key-ceremony.ipynb", {"ceremony_file": "symmetric-key.yaml"}),
    ("60-key-backup-restore.ipynb", {"backup_file": "key-backup.yaml", "restore_file": "key-restore.yaml"}),
    ("65-key-destruction.ipynb", {"ceremony_file": "key-destruction.yaml"}),
)


def demo_register(ws: Workspace) -> Register:
    """The example register with an attestation key for each person: file keys, for trying the tool only
    (private keys in secrets/attestation/, 0600; a live register enrols each person's own token instead,
    ``ceremony people enrol``), each with the self-signed certificate enrolment would make (people/<id>.pem beside
    the register, from the workspace's clock: what report.pdf's signature is verified under)."""
    data = load_yaml(data_dir() / "people.yaml")
    keys = ws.secrets_dir / "attestation"
    keys.mkdir(mode=0o700)
    now = ws.clock.now()
    for pid, person in data["people"].items():
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_once(keys / f"{pid}.key", der, mode=0o600)
        request = CertificateRequest(person=pid, organisation=person["organisation"], not_before=now)
        certificate = self_signed_certificate(key, request).public_bytes(serialization.Encoding.PEM)
        write_once(ws.root / "people" / f"{pid}.pem", certificate, what="participant certificates")
        person["attestation_key"] = key_fingerprint(key.public_key())
        person["attestation_certificate"] = f"people/{pid}.pem"
    path = ws.root / "people.yaml"
    path.write_text(
        f"# Demo register: data/people.yaml with an attestation key per person: each a {FILE_KEY_NOTE}\n"
        "# in secrets/attestation/ (one person holding this workspace could attest as everyone; a live\n"
        "# register enrols each person's own token: ceremony people enrol).\n" + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return load_register(path)


def run_ceremonies(ws: Workspace, register: Register, reports: Path) -> tuple[list[Path], list[Path]]:
    """Approve and run every demo ceremony as a notebook; then every participant attests each transcript."""
    needed = load_policy().ceremony.approvals_required
    approvers = [pid for pid, p in register.people.items() if "approver" in p.roles][:needed]
    runs: list[Path] = []
    for notebook, files in CEREMONY_RUNS:
        params: dict[str, Any] = {"workspace": str(ws.root)}
        for name, file in files.items():
            ceremony = load_ceremony(data_dir() / "ceremonies" / file)
            for by in approvers:
                record_approval(ws.journal, ceremony, by, register)
            params[name] = str(ceremony.path)
        runs.append(run_notebook(notebooks_dir() / notebook, params, reports_dir=reports, progress=False).executed)
    transcripts = sorted(
        (t for t in ws.transcripts_dir.glob("*.jsonl") if not t.name.endswith(".attestations.jsonl")),
        key=lambda t: read_entries(t)[0]["time"],
    )
    for transcript in transcripts:
        for pid in participants(read_entries(transcript)[0]):
            # The demo's keys are files (for trying the tool only); the attestation log records them so.
            key = load_file_key(ws.secrets_dir / "attestation" / f"{pid}.key")
            sign_transcript(transcript, pid, key, register)
    return transcripts, runs


def _issued_ca(ws: Workspace, name: str) -> Issued:
    ca = ws.inventory.ca(name)
    record = ws.inventory.certificate(ca.issuer_ca or ca.name, ca.serial)
    assert record is not None, f"CA {name}'s certificate is on record"
    cert = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(name))
    return Issued(cert, record, ws.root / (record.artifact or f"artifacts/cas/{name}.pem"))


def run_demo(
    workspace: Path,
    *,
    devices: int = 20,
    notice: Any = None,
    reports: Path | None = None,
    database: str | None = None,
) -> DemoResult:
    """Workspace → the key ceremonies run as notebooks (token, root and issuing CA, backup and restore
    test, destruction of the test copy) → organisation (DS, KA) certificates → the device fleet as a
    batch (notebook 30) → one device revoked, CRL and ARL published (notebook 40) → lint → export."""
    if devices < 0 or devices > 10_000:
        raise InputError(f"--devices must be between 0 and 10000 (got {devices})")
    ws = init_workspace(workspace, token_label=TOKEN_LABEL, initialise_token=False, database=database, purpose="demo")
    say = notice or (lambda text: print(text, file=sys.stderr))
    if ws.config.key_store.kind == "software":
        say(
            "notice: SoftHSM2 not found; CA keys are in the SOFTWARE key store (encrypted PKCS#8 in "
            f"{ws.secrets_dir}), not on a token. Install softhsm2 for a PKCS#11 token."
        )
    else:
        say(f"using the project-local SoftHSM2 token {TOKEN_LABEL!r} in {ws.root / 'token'}")
    result = DemoResult(workspace=ws.root, key_store=ws.config.key_store.kind)
    try:
        register = demo_register(ws)
        record_registers(ws, by=DEMO_ADMINISTRATOR, reason="the demo's participant register")
        say("running the key ceremonies as notebooks: token, root CA, issuing CA, backup and restore, destruction")
        result.transcripts, result.runs = run_ceremonies(ws, register, reports or ws.reports_dir)
        ws.close()
        ws = Workspace.open(ws.root)  # issuance activates the token from the shares deposited for unattended runs
        result.cas = [(name, ws.inventory.ca(name).role, _issued_ca(ws, name)) for name in (ROOT, ISSUING)]
        result.symmetric_keys = [
            {"label": key.label, "kcv": key.kcv, "purpose": key.purpose} for key in symmetric_keys(ws.inventory)
        ]
        organisation = get_profile("ss1sp-organisation", ws.config.oids)
        for usage in USAGES:
            key = ec.generate_private_key(ec.SECP256R1())
            identity = Identity(eui64=ORG_EUI64, usage=usage, role=ORG_ROLE, name=ORG_NAME)
            # The organisation's own CSR asks for its identity; issuance checks it against the approval.
            result.issued.append(
                issue(
                    ws,
                    ca_name=ISSUING,
                    profile_name="ss1sp-organisation",
                    csr=_csr(key, subject_name(organisation, identity)),
                    csr_source=f"demo:organisation-{usage}",
                    identity=identity,
                    approved_by=DEMO_APPROVER,
                )
            )
        if devices:
            _fleet(ws, result, devices, reports or ws.reports_dir)
        result.findings = lint_issued(ws, [i for _, _, i in result.cas] + result.issued)
        export_dir = ws.root / "exports"
        export_dir.mkdir(exist_ok=True)
        result.inventory_export = export_dir / "inventory.csv"
        ws.inventory.export_csv(result.inventory_export)
        _evidence(ws, result, reports or ws.reports_dir, say)
    finally:
        ws.close()
    return result


#: The demo's HSM inventory says what the token really is: SoftHSM2, with no FIPS validation.
DEMO_HSMS = """# HSM inventory of the demo workspace: SoftHSM2 stands in for the HSM, and says so.
schema_version: 1
hsms:
  - id: workbench-softhsm
    model: SoftHSM2 (software token, workbench stand-in)
    firmware: "2.6"
    fips_certificate: none
    fips_level: 0
    location: this machine
    token_labels: [s1sp-ca-token, s1sp-restore-token]
"""
DEMO_WAIVERS = """# Waivers of the demo workspace: what the PMA would be asked to accept for a demonstration.
schema_version: 1
waivers:
  - control: KEY-01
    subject: token s1sp-ca-token
    reason: the demonstration runs on SoftHSM2; production keys are generated in the FIPS 140-3 level 3 HSMs
    approved_by: victor
    expires: "2027-06-30"
  - control: CER-08
    reason: recordings of the workbench demonstration ceremonies are not kept; production ceremonies are filmed
    approved_by: victor
    expires: "2027-06-30"
"""


def _evidence(ws: Workspace, result: DemoResult, reports: Path, say: Any) -> None:
    """The demo's own registers (honest about SoftHSM2, with the waivers asked for), then an evidence pack."""
    from ceremony.reporting.evidence import build_pack
    from ceremony.reporting.pdf import available_renderers

    registers = ws.root / "registers"
    registers.mkdir(exist_ok=True)
    for name in ("documents", "assessments", "incidents"):
        shutil.copy2(data_dir() / "registers" / f"{name}.yaml", registers / f"{name}.yaml")
    (registers / "hsms.yaml").write_text(DEMO_HSMS, encoding="utf-8")
    (registers / "waivers.yaml").write_text(DEMO_WAIVERS, encoding="utf-8")
    record_registers(ws, by=DEMO_ADMINISTRATOR, reason="the demo's registers, before its first assessment")
    pdf = "weasyprint" in available_renderers()  # the pack's PDF/A documents are WeasyPrint's (Chromium's are no PDF/A)
    if not pdf:
        say("notice: WeasyPrint cannot render here (apt-get install libpango-1.0-0 libpangoft2-1.0-0); the evidence "
            "pack is built without PDFs")  # fmt: skip
    say("building the evidence pack: control checks, report notebook, PDFs, signed manifest")
    pack = build_pack(ws, reports=reports, person=DEMO_OFFICER, pdf=pdf)
    result.evidence_pack, result.verdict, result.pdfs = pack.directory, pack.verdict, pack.pdfs


def _fleet(ws: Workspace, result: DemoResult, devices: int, reports: Path) -> None:
    """The device fleet as a batch (notebook 30), then one device revoked and the CRL and ARL published
    (notebook 40); the batch's first and last certificates are written out as a sample."""
    fleet = write_device_fleet(ws.root / "fleets" / "demo", devices)
    params = {"workspace": str(ws.root), "ca": ISSUING, "devices": str(fleet), "approved_by": DEMO_APPROVER}
    result.runs.append(
        run_notebook(
            notebooks_dir() / "30-issue-certificates.ipynb", params, reports_dir=reports, progress=False
        ).executed
    )
    batch = [b for b in batches(ws.inventory) if b.status == "complete"][-1]
    records = ws.inventory.certificates_of_batch(batch.batch_id)
    result.batches.append({"id": batch.batch_id, "count": len(records), "bundle": str(ws.root / str(batch.bundle))})
    for record in {r.serial: r for r in (records[0], records[-1])}.values():
        path = ws.root / "exports" / "sample" / f"{record.serial}.pem"
        cert = x509.load_der_x509_certificate(record.der)
        write_once(path, cert.public_bytes(serialization.Encoding.PEM))
        result.issued.append(Issued(cert, record, path))
    revoke = {
        "workspace": str(ws.root),
        "ca": ISSUING,
        "eui64": records[0].eui64,
        "reason": "superseded",
        "requested_by": DEMO_APPROVER,
        "approved_by": "alice",
    }
    result.runs.append(
        run_notebook(
            notebooks_dir() / "40-revoke-and-publish-crl.ipynb", revoke, reports_dir=reports, progress=False
        ).executed
    )
    result.crls = [ws.root / crl.artifact for crl in crls(ws.inventory)]


def write_device_fleet(directory: Path, devices: int, *, first: int = 1) -> Path:
    """A demo device list: ``devices`` devices, each with a DS and a KA key (P-256, generated here and
    discarded) and an empty-subject CSR; returns ``devices.csv`` (see ceremony/batch.py for the format)."""
    csr_dir = directory / "csr"
    csr_dir.mkdir(parents=True, exist_ok=True)
    lines = ["eui64,usage,csr"]
    for n in range(first, first + devices):
        eui64 = f"{DEVICE_EUI64_BASE + n:016X}"
        for usage in USAGES:
            key = ec.generate_private_key(ec.SECP256R1())
            name = f"csr/{eui64}-{usage}.der"
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
            (directory / name).write_bytes(csr.public_bytes(serialization.Encoding.DER))
            lines.append(f"{eui64},{usage},{name}")
    path = directory / "devices.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lint_issued(ws: Workspace, issued: list[Issued]) -> list[Finding]:
    """Lint the certificate files as written (artifacts), each against its profile and its issuer.

    Issuance has already checked each certificate in memory; this checks what reached the disk.
    """
    by_serial = {(i.record.issuer_ca, i.record.serial): i.certificate for i in issued}
    cas = {name: ws.inventory.ca(name) for name in ws.inventory.ca_names()}
    findings: list[Finding] = []
    for item in issued:
        ca = cas.get(item.record.issuer_ca)
        issuer = by_serial.get((ca.issuer_ca or ca.name, ca.serial)) if ca else None
        written = x509.load_pem_x509_certificate(item.artifact.read_bytes())
        findings += check_certificate(
            written.public_bytes(serialization.Encoding.DER),
            get_profile(item.record.profile, ws.config.oids),
            issuer=issuer,
            subject=str(item.artifact),
        )
    bad = failing(findings)
    if bad:
        raise InputError(f"demo lint found {len(bad)} errors, first: {bad[0]}")
    return findings
