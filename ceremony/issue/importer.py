"""`ceremony inventory import`: foreign certificates into the inventory, parsed in parallel, classified
by profile, with their lint findings kept beside them.

A foreign certificate's issuer is not one of the workspace's CAs: its ``issuer_ca`` is
``ext:`` and 12 hex digits of the SHA-256 of the issuer name's DER, so that serials from
different issuers never collide. The import records who ran it (the registered operator named, and the
login) and where each certificate came from; a certificate already in the inventory (same SHA-256) is
counted and skipped.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

from ceremony.errors import InputError
from ceremony.lint.certificate import _other_name_value, parse_certificate
from ceremony.lint.files import _classify, _documents, _files
from ceremony.model.der import (
    HARDWARE_MODULE_NAME_OID,
    key_facts,
    key_size_bits,
    parse_hardware_module_name,
    signature_name,
)
from ceremony.model.events import InventoryImport
from ceremony.model.people import check_role, operator, workspace_register
from ceremony.model.profiles import ResolvedProfile, available_profiles, get_profile
from ceremony.record.inventory import CERTIFICATE_COLUMNS, FindingRecord
from ceremony.record.workspace import Workspace

_PROFILES: dict[str, ResolvedProfile] = {}
_KU = {"digital_signature": "ds", "key_agreement": "ka"}


@dataclass
class ImportResult:
    imported: int = 0
    already: int = 0
    crls_skipped: int = 0
    by_profile: dict[str, int] | None = None


def _fields(der: bytes, source: str) -> dict[str, Any]:
    """The inventory columns of a certificate, read with asn1crypto (it also reads what cryptography refuses)."""
    cert = parse_certificate(der, source).cert
    tbs = cert["tbs_certificate"]
    eui64 = role = name = None
    for rdn in tbs["subject"].chosen:
        for attribute in rdn:
            kind = attribute["type"].dotted
            if kind == "2.5.4.45":  # x500UniqueIdentifier: a BIT STRING of the EUI-64
                eui64 = bytes(attribute["value"].contents[1:]).hex().upper()
            elif kind == "2.5.4.11":
                role = str(attribute["value"].native)
            elif kind == "2.5.4.3":
                name = str(attribute["value"].native)
    for value in cert.subject_alt_name_value or []:
        if value.name == "other_name" and value.chosen["type_id"].dotted == HARDWARE_MODULE_NAME_OID:
            eui64 = parse_hardware_module_name(_other_name_value(value.chosen))[1].hex().upper()
    usages = [_KU[u] for u in (cert.key_usage_value.native if cert.key_usage_value else []) if u in _KU]
    aki = cert.authority_key_identifier
    return {
        "serial": f"{tbs['serial_number'].native:032X}",
        "issuer_der": tbs["issuer"].dump(),
        "issuer": tbs["issuer"].human_friendly,
        "subject": tbs["subject"].human_friendly,
        "eui64": eui64,
        "role": role,
        "usage": usages[0] if len(usages) == 1 else None,
        "name": name,
        "not_before": tbs["validity"]["not_before"].native.astimezone(timezone.utc).isoformat(),
        "not_after": tbs["validity"]["not_after"].native.astimezone(timezone.utc).isoformat(),
        "key_algorithm": (algorithm := key_facts(tbs["subject_public_key_info"]).algorithm),
        "key_size": key_size_bits(algorithm),
        "signature_algorithm": signature_name(cert["signature_algorithm"]["algorithm"].dotted),
        "policy_oids": " ".join(p["policy_identifier"].dotted for p in cert.certificate_policies_value or []),
        "ski": cert.key_identifier.hex().upper() if cert.key_identifier else "",
        "aki": aki.hex().upper() if aki else None,
        "fingerprint": hashlib.sha256(der).hexdigest(),
    }


def _one(item: tuple[str, bytes]) -> tuple[dict[str, Any], str, list[tuple[str, str, str]]] | str:
    source, der = item
    try:
        fields = _fields(der, source)
        profile, findings = _classify(der, source, _PROFILES, None)
    except InputError as exc:
        return exc.message
    return fields, profile, [(f.severity.name, f.code, f.message) for f in findings]


def import_certificates(ws: Workspace, paths: list[Path], *, by: str, jobs: int = 1) -> ImportResult:
    """Parse, classify and store every certificate under ``paths``; CRLs are counted and left out.

    ``by`` is the operator who imports them: the workspace's participant register must name them for the
    ``operator`` role (checked before anything is read); the journal's entry records them.
    """
    check_role(workspace_register(ws.root), by, "operator", "--by")
    for path in paths:  # a FIFO or device named here is refused, never read (the reader skips such files)
        if path.exists() and not (path.is_dir() or path.is_file()):
            raise InputError(f"{path}: not a regular file or a directory; nothing imported")
    documents: list[tuple[str, bytes]] = []
    result = ImportResult(by_profile={})
    for path in _files(paths):
        found = _documents(path)
        for index, (kind, der) in enumerate(found):
            if kind == "crl":
                result.crls_skipped += 1
                continue
            documents.append((str(path) if len(found) == 1 else f"{path}#{index + 1}", der))
    if not documents:
        raise InputError("no certificates found in " + ", ".join(str(p) for p in paths))
    _PROFILES.clear()
    _PROFILES.update({name: get_profile(name, ws.config.oids) for name in available_profiles()})
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parsed = pool.map(_one, documents, chunksize=32)
    else:
        parsed = [_one(item) for item in documents]
    problems = [f"{source}: {outcome}" for (source, _), outcome in zip(documents, parsed, strict=True)
                if isinstance(outcome, str)]  # fmt: skip
    if problems:
        raise InputError(f"{len(problems)} file(s) are not certificates; nothing imported (first: {problems[0]})")
    known = ws.inventory.fingerprints()
    now = ws.clock.now().isoformat(timespec="microseconds")
    rows: list[tuple[Any, ...]] = []
    findings: list[FindingRecord] = []
    assert result.by_profile is not None
    for (source, der), outcome in zip(documents, parsed, strict=True):
        assert not isinstance(outcome, str)
        fields, profile, lint = outcome
        if fields["fingerprint"] in known:
            result.already += 1
            continue
        known.add(fields["fingerprint"])
        issuer_ca = "ext:" + hashlib.sha256(fields.pop("issuer_der")).hexdigest()[:12]
        values = {**fields, "issuer_ca": issuer_ca, "profile": profile, "status": "valid", "approved_by": "import",
                  "csr_sha256": None, "key_store": None, "batch_id": None, "ceremony_id": None, "issued_at": now,
                  "artifact": source, "der": der}  # fmt: skip
        rows.append(tuple(values[c] for c in CERTIFICATE_COLUMNS))
        findings += [FindingRecord(fields["fingerprint"], *f) for f in lint]
        result.by_profile[profile] = result.by_profile.get(profile, 0) + 1
    with ws.inventory.transaction() as db:
        ws.inventory.add_certificate_rows(db, rows)
        ws.inventory.add_findings(db, findings)
        ws.journal.append(
            InventoryImport(
                actor=operator(),
                by=by,
                paths=[str(p) for p in paths],
                imported=len(rows),
                already=result.already,
                by_profile=result.by_profile,
            ),
        )
    result.imported = len(rows)
    return result


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))
