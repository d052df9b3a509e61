"""`ceremony demo`: the whole story on a new workspace, with embedded defaults."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.checks.certificate import check_certificate
from ceremony.checks.findings import Finding, failing
from ceremony.errors import InputError
from ceremony.issuance import Issued, create_ca, issue
from ceremony.profiles import get_profile
from ceremony.tbs import Identity, Usage, subject_name
from ceremony.workspace import Workspace, init_workspace

DEMO_APPROVER = "demo-ra-officer"
ROOT, ISSUING = "s1sp-root", "s1sp-issuing"
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

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "key_store": self.key_store,
            "cas": [{"name": name, "role": role, "certificate": str(i.artifact)} for name, role, i in self.cas],
            "issued": [{"profile": i.record.profile, "certificate": str(i.artifact)} for i in self.issued],
            "inventory_export": str(self.inventory_export),
        }


def default_workspace(base: Path, now: datetime) -> Path:
    return base / "workspaces" / now.strftime("demo-%Y%m%dT%H%M%S.%fZ")


def _csr(key: ec.EllipticCurvePrivateKey, subject: x509.Name) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def run_demo(workspace: Path, *, devices: int = 20, notice: Any = None) -> DemoResult:
    """Workspace → token → root and issuing CA → organisation (DS, KA) and device certificates → lint → export."""
    if devices < 0 or devices > 10_000:
        raise InputError(f"--devices must be between 0 and 10000 (got {devices})")
    ws = init_workspace(workspace)
    say = notice or (lambda text: print(text, file=sys.stderr))
    if ws.config.key_store.kind == "software":
        say(
            "notice: SoftHSM2 not found; CA keys are in the SOFTWARE key store (encrypted PKCS#8 in "
            f"{ws.secrets_dir}), not on a token. Install softhsm2 for a PKCS#11 token."
        )
    else:
        say(f"using the project-local SoftHSM2 token {ws.config.key_store.token_label!r} in {ws.root / 'token'}")
    result = DemoResult(workspace=ws.root, key_store=ws.config.key_store.kind)
    try:
        result.cas.append(
            (
                ROOT,
                "root",
                create_ca(
                    ws, ROOT, profile_name="ss1spca-root", common_name="S1SP Demo Root 1", approved_by=DEMO_APPROVER
                ),
            )
        )
        result.cas.append(
            (
                ISSUING,
                "issuing",
                create_ca(
                    ws,
                    ISSUING,
                    profile_name="ss1spca-issuing",
                    common_name="S1SP Demo Issuing 1",
                    approved_by=DEMO_APPROVER,
                    issuer_ca=ROOT,
                ),
            )
        )
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
        for n in range(devices):
            eui64 = f"{DEVICE_EUI64_BASE + n + 1:016X}"
            for usage in USAGES:
                key = ec.generate_private_key(ec.SECP256R1())
                result.issued.append(
                    issue(
                        ws,
                        ca_name=ISSUING,
                        profile_name="ss1sp-device",
                        csr=_csr(key, x509.Name([])),
                        csr_source=f"demo:{eui64}-{usage}",
                        identity=Identity(eui64=eui64, usage=usage),
                        approved_by=DEMO_APPROVER,
                    )
                )
        result.findings = lint_issued(ws, [i for _, _, i in result.cas] + result.issued)
        export_dir = ws.root / "exports"
        export_dir.mkdir(exist_ok=True)
        result.inventory_export = export_dir / "inventory.csv"
        ws.inventory.export_csv(result.inventory_export)
    finally:
        ws.close()
    return result


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
