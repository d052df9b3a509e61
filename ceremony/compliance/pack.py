"""Evidence pack verification: every listed file present with its size and SHA-256, nothing added, the signature, and
the files report.pdf carries equal to the pack's own."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ceremony.compliance.pdf_signature import report_signature
from ceremony.errors import InputError
from ceremony.fs import read_regular, sha256_file
from ceremony.keys.signatures import verifies
from ceremony.procedures.attestation import key_fingerprint
from ceremony.record.manifest import parse_file_list
from ceremony.record.timestamps import check_pack_timestamps
from ceremony.record.transcript import read_aloud


@dataclass
class PackCheck:
    ok: bool
    signer_established: bool
    message: str
    signer_key: str = ""
    words: str = ""
    #: What the pack's RFC 3161 timestamp tokens say (manifest.json.tsr, the transcripts' seals), a line each.
    timestamps: tuple[str, ...] = ()
    #: What report.pdf's PAdES signature says (ceremony.compliance.pdf_signature; empty: the pack has no report.pdf).
    report_signature: str = ""


#: The largest manifest (or signature, or signer key) a pack may carry.
MANIFEST_LIMIT = 64 << 20


def _links(directory: Path) -> str | None:
    """The first symbolic link in the pack (relative), if any: a pack holds regular files and directories
    only, so that nothing it lists is read from outside it (DESIGN.md principle 9)."""
    for parent, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted((*dirs, *files)):
            if os.path.islink(os.path.join(parent, name)):
                return Path(parent, name).relative_to(directory).as_posix()
    return None


def _read(path: Path, what: str) -> bytes:
    return read_regular(path, MANIFEST_LIMIT, what)


def verify_pack(directory: Path, trust: Path | None = None) -> PackCheck:
    """Every listed file present with its size and SHA-256, nothing added, no symbolic link anywhere, and the
    signature valid."""
    if not (directory / MANIFEST).is_file():
        raise InputError(f"{directory}: not an evidence pack (no {MANIFEST})")
    trusted = None
    if trust is not None:
        try:
            trusted = serialization.load_pem_public_key(trust.read_bytes())
        except (OSError, ValueError) as exc:
            raise InputError(f"--trust: {trust} is not a PEM public key ({exc.__class__.__name__})") from None
    link = _links(directory)
    if link is not None:
        return PackCheck(False, False, f"{link}: a symbolic link in the pack (a pack holds no links; none is followed)")
    data = _read(directory / MANIFEST, "manifest")
    listed = parse_file_list(data)
    if isinstance(listed, str):
        return PackCheck(False, False, f"{MANIFEST}: {listed}")
    # The signature first: nothing a changed manifest lists is believed (or named) before it verifies.
    signature = _read(directory / SIGNATURE, "signature") if (directory / SIGNATURE).is_file() else b""
    if trusted is not None and not verifies(trusted, signature, data):
        return PackCheck(False, False, f"{SIGNATURE}: the manifest's signature does not verify under the trusted key")
    for rel, entry in listed.items():
        path = directory / rel
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            return PackCheck(False, False, f"{rel}: listed in the manifest but missing")
        except OSError as exc:  # ENAMETOOLONG, ENOTDIR: a name no file of the pack can have
            return PackCheck(False, False, f"{MANIFEST}: lists {rel[:60]!r}, which cannot be a file ({exc.strerror})")
        if not stat.S_ISREG(status.st_mode):
            return PackCheck(False, False, f"{rel}: listed in the manifest but missing (not a regular file)")
        if status.st_size != entry["size"] or sha256_file(path, follow=False) != entry["sha256"]:
            return PackCheck(False, False, f"{rel}: does not match the manifest (changed since it was signed)")
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel not in listed and rel not in (MANIFEST, SIGNATURE, MANIFEST_TOKEN):
            return PackCheck(False, False, f"{rel}: not in the manifest (added after signing)")
    attached = report_attachments_differ(directory) if REPORT_PDF in listed else None
    if attached is not None:
        return PackCheck(False, False, attached)
    try:
        carried = (
            serialization.load_pem_public_key(_read(directory / SIGNER, "signer key")) if SIGNER in listed else None
        )
    except ValueError:
        return PackCheck(False, False, f"{SIGNER}: not a PEM public key")
    verifier = trusted if trusted is not None else carried  # the key the manifest's signature is verified under
    pades = report_signature(directory, data, verifier) if REPORT_PDF in listed else None
    if pades is not None and not pades.ok:
        return PackCheck(False, False, pades.message)
    stamps = check_pack_timestamps(directory, MANIFEST)  # under the TSA chain the (verified) manifest lists
    if not stamps.ok:
        return PackCheck(False, False, stamps.failure)
    words = fingerprint_words(data)
    if trusted is not None:
        return PackCheck(
            True,
            True,
            f"intact: {len(listed)} files; signed by the trusted key {key_fingerprint(trusted)}",
            key_fingerprint(trusted),
            words,
            stamps.lines,
            report_signature=pades.message if pades is not None else "",
        )
    if carried is None or not verifies(carried, signature, data):
        return PackCheck(False, False, f"{SIGNATURE}: the manifest's signature does not verify under {SIGNER}")
    return PackCheck(
        True,
        False,
        f"intact: {len(listed)} files; signed by {key_fingerprint(carried)}, which is "
        "NOT established: compare it with the officer's published fingerprint, or pass "
        "--trust",
        key_fingerprint(carried),
        words,
        stamps.lines,
        report_signature=pades.message if pades is not None else "",
    )


MANIFEST = "manifest.json"


REPORT_PDF = "report.pdf"
"""The assessment report: a PDF/A-3b carrying findings.json, the evidence index and the CA certificates."""

#: The largest report (or file it carries) read: a report carries findings.json, which a large estate makes large.
REPORT_LIMIT = 1 << 30
#: The pack files report.pdf must carry (besides every CA certificate of artifacts/cas/).
REPORT_CARRIES = ("findings.json", "evidence-index.json")


def attachment_path(name: str) -> str:
    """The pack file an attachment of report.pdf stands for: a CA certificate (``<ca>.pem``) is the one in
    artifacts/cas/, any other file the one of that name at the top of the pack."""
    return f"artifacts/cas/{name}" if name.endswith(".pem") else name


def report_attachments_differ(directory: Path) -> str | None:
    """What is wrong with the files report.pdf carries as associated files, or None: each must be byte for byte the
    pack file :func:`attachment_path` names, and findings.json, the evidence index and every CA certificate of the
    pack must be among them (an assessor may read the report alone, years on)."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        carried = PdfReader(io.BytesIO(read_regular(directory / REPORT_PDF, REPORT_LIMIT, "report"))).attachments
        attachments = {name: carried[name] for name in carried}
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        return f"{REPORT_PDF}: its attachments cannot be read ({type(exc).__name__})"
    for name, copies in sorted(attachments.items()):
        rel = attachment_path(name)
        path = directory / rel
        if os.path.islink(path) or not path.is_file():
            return f"{REPORT_PDF}: carries {name[:60]!r}, which is not a file of the pack ({rel[:60]})"
        if any(copy != read_regular(path, REPORT_LIMIT, "pack file") for copy in copies):
            return f"{REPORT_PDF}: its attachment {name} is not the pack's {rel}"
    cas = sorted(p.name for p in (directory / "artifacts" / "cas").glob("*.pem"))
    missing = [n for n in (*REPORT_CARRIES, *cas) if n not in attachments]
    if missing:
        return f"{REPORT_PDF}: does not carry {', '.join(missing)}"
    return None


SIGNATURE = "manifest.json.sig"

#: The manifest's RFC 3161 timestamp token (when the workspace names a TSA in reach), outside the manifest like its
#: signature.
MANIFEST_TOKEN = "manifest.json.tsr"  # noqa: S105 - a file name, not a secret


SIGNER = "signer.pem"


def fingerprint_words(data: bytes) -> str:
    return read_aloud(hashlib.sha256(data).digest())
