"""Batch issuance for a device fleet: validate the whole list, then sign from a DER template, resumably."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError, StateError
from ceremony.issue.batch.bundle import BatchResult, complete, completed
from ceremony.issue.batch.devices import (
    COLUMNS,
    PACKED,
    DeviceList,
    Reject,
    Row,
    batch_id_for,
    identity_key,
    read_device_list,
    select_requests,
    validate_row,
    write_rejects,
)
from ceremony.issue.batch.plan import BatchPlan, build_templates, ca_point, issuer_of_certificate, prove_exemplar
from ceremony.issue.batch.runner import CHUNK, check_rows, progress_bar, signing
from ceremony.issue.batch.stages import RECORD, Stages, lap, mark
from ceremony.issue.recovery import issuer_of, refuse_succeeded
from ceremony.model.events import BatchRefused, BatchResume, BatchStart
from ceremony.model.people import check_role, operator, workspace_register
from ceremony.model.profiles import ResolvedProfile, get_profile
from ceremony.model.template import batch_time, utc_time
from ceremony.record import batches
from ceremony.record.batches import BatchCertificateRow, SignedInBatch
from ceremony.record.checkpoints import write_checkpoint
from ceremony.record.timestamps import stamp_pending
from ceremony.record.workspace import Workspace

__all__ = (
    "CHUNK",
    "COLUMNS",
    "PACKED",
    "BatchPlan",
    "BatchResult",
    "DeviceList",
    "Reject",
    "Row",
    "batch_id_for",
    "check_bundle_path",
    "identity_key",
    "issue_batch",
    "read_device_list",
    "validate_row",
)


def issue_batch(
    ws: Workspace,
    *,
    ca_name: str,
    profile_name: str,
    devices: Path,
    approved_by: str,
    jobs: int = 1,
    skip_rejected: Path | None = None,
    rekey: bool = False,
    sample_rate: float = 0.01,
    progress: bool | None = None,
    say: Callable[[str], None] = print,
    chunk: int = CHUNK,
) -> BatchResult:
    """Validate the whole device list, then issue what is missing.

    The device list is the approved request: a CSV whose first columns are ``eui64,usage,csr`` (the CSR path
    relative to the list's directory, PEM or DER; or ``recorded:<sha256>``, a CSR the inventory archived when it
    certified the same EUI-64 and usage before: re-certification under another CA). Its SHA-256, the CA, the
    profile and the re-key flag make the batch key, so running the same command again after a crash or a kill
    issues only what is missing. Each chunk of certificates is committed to the inventory in one transaction,
    with the CSR of each archived in it; the batch's bundle (one PEM file of all its certificates) is written
    once, from the inventory, when the batch completes, so the inventory and the bundle always agree.

    Every certificate costs one CSR signature verification, one CA signature and one verification
    of that signature with the CA's public key. The profile's exemplar is linted in full once per
    batch and proven byte-for-byte equal to the cryptography builder's output; every certificate is
    linted after signing (the template path: the full lint's findings), and a sample (first, last and
    ``sample_rate`` of the rest) with the issuer as well.

    Args:
        ws: The workspace (its CA, inventory, journal and clock).
        ca_name: The issuing CA.
        profile_name: A device profile the CA may issue.
        devices: The device list.
        approved_by: The RA officer who approved the list (the workspace's register names them ``ra-officer``).
        jobs: 1 signs in this process; more fork that many workers, for the checks and for the signing.
        skip_rejected: A new file for the rejected rows; without it, one reject refuses the whole batch.
        rekey: Issue even for identities that already hold a valid certificate from this CA.
        sample_rate: Share of the certificates, besides the first and the last, also linted with the issuer.
        progress: Progress bars (None: on a terminal only).
        say: Where each reject's line goes.
        chunk: Certificates per unit of work and per inventory transaction.

    Raises:
        InputError: bad options, a bad list, or rejected rows without ``skip_rejected``.
        StateError: the exemplar fails its profile, or a chunk fails its checks after signing (then
            nothing of that chunk is recorded; a later run resumes from the chunks committed).
    """
    check_role(workspace_register(ws.root), approved_by, "ra-officer", "--approved-by")
    if not 1 <= jobs <= (os.cpu_count() or 1) * 4:
        raise InputError(f"--jobs must be between 1 and {(os.cpu_count() or 1) * 4} (got {jobs})")
    if not 0.0 <= sample_rate <= 1.0:
        raise InputError(f"--sample-rate must be between 0 and 1 (got {sample_rate})")
    if skip_rejected is not None and skip_rejected.exists():
        raise InputError(f"--skip-rejected: {skip_rejected} exists; name a new file")
    profile = get_profile(profile_name, ws.config.oids)
    ws.journal.check_clock()
    device_list = read_device_list(devices)
    ca, issuer_cert, key = issuer_of(ws, ca_name)
    refuse_succeeded(ws, ca_name)
    if ca.profile not in profile.rules.issued_by:
        raise InputError(
            f"profile {profile_name} must be issued by {', '.join(profile.rules.issued_by)}, not {ca_name}"
        )
    ca_public = issuer_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(ca_public, ec.EllipticCurvePublicKey):
        raise InputError(f"a batch signs with ECDSA; the key of CA {ca_name} is not an EC key")
    issuer = issuer_of_certificate(issuer_cert)
    templates = build_templates(profile, issuer)
    stages: Stages = {}
    checked = check_rows(device_list, ca_point=ca_point(issuer_cert), jobs=jobs, progress=progress, chunk=chunk,
                         recorded=ws.inventory.recorded_csrs, stages=stages)  # fmt: skip
    batch_key = batch_id_for(device_list, checked, ca_name, profile_name, rekey)
    now = ws.clock.now().isoformat(timespec="microseconds")
    with ws.inventory.lease(f"batch:{batch_key}", what=f"this batch (list {device_list.path.name}, key {batch_key})",
                            now=now):  # fmt: skip
        result = _run(ws, device_list, checked, batch_key, ca_name=ca_name, profile_name=profile_name,
                      approved_by=approved_by, rekey=rekey, jobs=jobs, skip_rejected=skip_rejected,
                      sample_rate=sample_rate, progress=progress, say=say, chunk=chunk, key=key, ca_public=ca_public,
                      issuer_cert=issuer_cert, profile=profile, templates=templates, issuer=issuer,
                      stages=stages)  # fmt: skip
    if result.issued_now:  # a batch completed by this run anchors the journal (a re-run of a done one adds nothing)
        write_checkpoint(ws.journal, key, key_label=ca.key_label, reason=f"batch {result.batch_id} completed",
                         anchors={"bundle_sha256": str(result.bundle_sha256)})  # fmt: skip
    stamp_pending(ws)  # this checkpoint and what earlier offline steps left unstamped (a TSA named and in reach)
    return result


def _run(
    ws: Workspace,
    device_list: DeviceList,
    checked: list[bytes | Reject],
    batch_key: str,
    *,
    ca_name: str,
    profile_name: str,
    approved_by: str,
    rekey: bool,
    jobs: int,
    skip_rejected: Path | None,
    sample_rate: float,
    progress: bool | None,
    say: Callable[[str], None],
    chunk: int,
    key: ec.EllipticCurvePrivateKey,
    ca_public: ec.EllipticCurvePublicKey,
    issuer_cert: x509.Certificate,
    profile: ResolvedProfile,
    templates: Any,
    issuer: Any,
    stages: Stages,
) -> BatchResult:
    """The batch under its lease: a second run of the same list waits for none and is refused in one line.

    A batch's id is its key (what makes two runs the same batch) and a random suffix, so that nobody can
    know the id, and plant something at its bundle's path, before the batch is opened; later runs of the
    same list find the batch by its key and resume it."""
    batch = batches.find_batch_by_key(ws.inventory, batch_key)
    batch_id = batch.batch_id if batch is not None else f"{batch_key}-{secrets.token_hex(6)}"
    result = BatchResult(batch_id, device_list.count, stages=stages)
    if batch is not None and batch.status == "complete":
        return completed(ws, result, batch)
    check_bundle_path(ws, batch_id, new=batch is None)
    accepted = _select(ws, device_list, checked, ca_name, profile_name, rekey, result)
    del checked  # a million rows: keep only what is still to issue
    if result.rejected:
        for reject in result.rejected:
            say(f"reject {reject.line()}")
        if skip_rejected is None:
            raise InputError(
                f"{len(result.rejected)} of {device_list.count} rows rejected; nothing issued "
                "(fix the list, or --skip-rejected FILE to issue the rest)"
            )
        write_rejects(skip_rejected, result.rejected)
    prove_exemplar(profile, issuer, templates, accepted, ws.clock.now())
    _open(ws, result, device_list, ca_name, profile_name, approved_by, rekey, jobs, skip_rejected, batch, batch_key)
    rows = batches.certificate_rows(
        profile=profile, issuer_ca=ca_name, profile_name=profile_name, approved_by=approved_by,
        issuer_cert=issuer_cert, batch_id=batch_id,
    )  # fmt: skip
    plan = BatchPlan(
        batch_id=batch_id,
        key=key,
        ca_public=ca_public,
        templates=templates,
        profile=profile,
        issuer_cert=issuer_cert,
        not_before=utc_time(batch_time(ws.clock.now())),  # one notBefore for every certificate of this run
        sample_rate=sample_rate,
        total=len(accepted),
    )
    _issue(ws, plan, accepted, result, rows, jobs=jobs, progress=progress, chunk=chunk, rekey=rekey)
    return complete(ws, result, ca_name)


def check_bundle_path(ws: Workspace, batch_id: str, *, new: bool) -> None:
    """Refuse, before anything is signed, a bundle path the batch could never complete at: a link or anything
    but a directory on the way, or (a new batch) anything at all where its bundle goes.

    Raises:
        StateError: in one line naming the path; nothing is changed.
    """
    relative = batches.bundle_artifact(batch_id)
    path = ws.root / relative
    for folder in (path.parent.parent, path.parent):
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            raise StateError(f"{folder} is a symbolic link or not a directory; nothing was issued: remove it")
    for candidate in (path, path.with_name(path.name + ".partial")):
        if not os.path.lexists(candidate):
            continue
        if new or candidate.is_symlink() or not candidate.is_file():
            raise StateError(
                f"{candidate} is already there{' (a symbolic link)' if candidate.is_symlink() else ''} before "
                f"batch {batch_id} wrote it; nothing was issued: remove it and run again"
            )


def _select(
    ws: Workspace,
    device_list: DeviceList,
    checked: list[bytes | Reject],
    ca_name: str,
    profile_name: str,
    rekey: bool,
    result: BatchResult,
) -> list[bytes]:
    """The valid requests still to issue (``select_requests``), against what the inventory holds."""
    done = {
        identity_key(eui64, usage == "ka") for eui64, usage in batches.issued_identities(ws.inventory, result.batch_id)
    }
    result.issued_before = len(done)
    valid = set()
    if not rekey:
        valid = {
            identity_key(eui64, usage == "ka")
            for eui64, usage in batches.valid_identities(ws.inventory, ca_name, profile_name, outside=result.batch_id)
        }
    selection = select_requests(device_list, checked, done=done, valid=valid)
    result.rejected.extend(selection.rejected)
    return selection.accepted


def _open(
    ws: Workspace,
    result: BatchResult,
    device_list: DeviceList,
    ca_name: str,
    profile_name: str,
    approved_by: str,
    rekey: bool,
    jobs: int,
    skip_rejected: Path | None,
    batch: batches.BatchRecord | None,
    batch_key: str,
) -> None:
    now = ws.clock.now().isoformat(timespec="microseconds")
    with ws.inventory.transaction() as db:
        if batch is None:
            batches.open_batch(
                db, batch_id=result.batch_id, issuer_ca=ca_name, profile=profile_name, list_sha256=device_list.sha256,
                approved_by=approved_by, rekey=rekey, requested=result.requested, created_at=now, batch_key=batch_key,
            )  # fmt: skip
        opened = BatchStart if batch is None else BatchResume
        ws.journal.append(
            opened(
                batch_id=result.batch_id,
                actor=operator(),
                approved_by=approved_by,
                ca=ca_name,
                profile=profile_name,
                devices=str(device_list.path),
                list_sha256=device_list.sha256,
                requested=result.requested,
                already_issued=result.issued_before,
                rejected=len(result.rejected),
                rejects_file=str(skip_rejected) if skip_rejected else None,
                rekey=rekey,
                jobs=jobs,
            )
        )


def _issue(
    ws: Workspace,
    plan: BatchPlan,
    accepted: list[bytes],
    result: BatchResult,
    rows: Callable[[SignedInBatch, str], BatchCertificateRow],
    *,
    jobs: int,
    progress: bool | None,
    chunk: int,
    rekey: bool = False,
) -> None:
    """Sign what is accepted, chunk by chunk, committing each chunk to the inventory as it comes back, with the
    CSRs of its certificates (the DER after each accepted request's packed bytes, taken here by index: chunks
    come back in order, one certificate per request).

    A chunk is committed by a recording thread while the next one is signed: the commit's wait for the disk
    (SQLite's fsync, PostgreSQL's round trips) overlaps the signing, and nothing else is shared (this thread does
    not touch the inventory while a commit is out). Chunks are committed one at a time, in order; a chunk that
    fails to commit stops the batch before the next one is handed over."""
    done = 0
    recorder = _Recorder(ws, result, rekey)
    # The workers fork before the bar and the recording thread exist: no other thread is running when they do.
    with signing(plan, accepted, jobs=jobs, chunk=chunk, stages=result.stages) as out, recorder:
        with progress_bar(len(accepted), "issue", progress) as bar:
            recorder.bar = bar
            for signed in out:
                if isinstance(signed, str):
                    recorder.wait()  # what was signed before this chunk is committed (or refused) first
                    ws.journal.append(BatchRefused(batch_id=result.batch_id, reason=signed))
                    raise StateError(
                        f"batch {result.batch_id}: {signed}; this chunk was discarded, nothing of it recorded"
                    )
                issued_at = ws.clock.now().isoformat(timespec="microseconds")
                chunk_rows = [rows(s, issued_at) for s in signed]
                csrs = [request[PACKED:] for request in accepted[done : done + len(signed)]]
                done += len(signed)
                recorder.submit(chunk_rows, csrs)
            recorder.wait()


class _Recorder:
    """Records a batch's chunks in order: each chunk's rows written in the calling thread, its commit (the wait for
    the disk: SQLite's fsync, PostgreSQL's round trip) run by a thread of its own while the next chunk is signed.

    ``submit`` waits for the commit before (so at most one is ever out, and nothing else touches the inventory
    meanwhile), writes the chunk's rows (an identity taken by another run is refused there, in this thread, the
    transaction rolled back), then hands its commit over; ``wait`` waits for the last commit. The time this thread
    spends writing rows and waiting for a commit is the batch's ``record/insert`` stage."""

    def __init__(self, ws: Workspace, result: BatchResult, rekey: bool) -> None:
        self.ws, self.result, self.rekey = ws, result, rekey
        self.bar: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-commit")
        self._pending: tuple[Future[None], int] | None = None

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._pending is not None:  # leaving on an error: the commit out is let finish, its outcome dropped
                futures_wait([self._pending[0]])
        finally:
            self._pool.shutdown(wait=True)

    def submit(self, chunk_rows: list[BatchCertificateRow], csrs: list[bytes]) -> None:
        self.wait()
        started = mark()
        try:
            commit = batches.record_signed_uncommitted(self.ws.inventory, chunk_rows, csrs=csrs, rekey=self.rekey)
        except batches.IdentityTaken as exc:
            taken = batches.first_taken(self.ws.inventory, chunk_rows)
            reason = f"EUI-64 {taken} got a valid certificate from another run meanwhile"
            self.ws.journal.append(BatchRefused(batch_id=self.result.batch_id, reason=reason))
            raise StateError(
                f"batch {self.result.batch_id}: {reason}; this chunk was discarded, nothing of it recorded"
            ) from exc
        self._pending = (self._pool.submit(commit), len(chunk_rows))
        lap(self.result.stages, RECORD, started)

    def wait(self) -> None:
        if self._pending is None:
            return
        started = mark()
        future, count = self._pending
        self._pending = None
        future.result()
        lap(self.result.stages, RECORD, started)
        self.result.issued_now += count
        if self.bar is not None:
            self.bar.update(count)
