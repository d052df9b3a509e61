"""A batch's outcome and its completion: the write-once bundle from the inventory, and the serial list digest."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ceremony.errors import StateError
from ceremony.fs import create
from ceremony.issue.batch.devices import Reject
from ceremony.issue.batch.stages import BUNDLE, Stages, lap, mark
from ceremony.model.events import BatchComplete
from ceremony.record import batches
from ceremony.record.inventory import pem_certificate
from ceremony.record.workspace import Workspace


@dataclass
class BatchResult:
    """What one run of a batch did, filled in as it goes; ``to_json`` is the CLI's ``--json`` object."""

    batch_id: str
    requested: int
    issued_now: int = 0
    issued_before: int = 0
    rejected: list[Reject] = field(default_factory=list)
    bundle: Path | None = None
    bundle_sha256: str | None = None
    first_serial: str | None = None
    last_serial: str | None = None
    serials_sha256: str | None = None
    #: Seconds per stage of this run (``ceremony.issue.batch.stages``); not part of ``to_json``.
    stages: Stages = field(default_factory=dict)

    @property
    def issued(self) -> int:
        return self.issued_now + self.issued_before

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "requested": self.requested,
            "issued": self.issued,
            "issued_now": self.issued_now,
            "issued_before": self.issued_before,
            "rejected": len(self.rejected),
            "bundle": str(self.bundle) if self.bundle else None,
            "bundle_sha256": self.bundle_sha256,
            "first_serial": self.first_serial,
            "last_serial": self.last_serial,
            "serials_sha256": self.serials_sha256,
        }


def serial_digest(ws: Workspace, result: BatchResult) -> None:
    """First and last serial of the batch, and the SHA-256 of its serials, one a line, in the order recorded."""
    digest = _SerialDigest()
    for serial in batches.issued_serials(ws.inventory, result.batch_id):
        digest.add(serial)
    digest.into(result)


class _SerialDigest:
    """The serial list digest, taken a serial at a time in the order recorded."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.first: str | None = None
        self.last: str | None = None

    def add(self, serial: str) -> None:
        self.digest.update(serial.encode() + b"\n")
        self.first = self.first or serial
        self.last = serial

    def into(self, result: BatchResult) -> None:
        result.first_serial, result.last_serial, result.serials_sha256 = self.first, self.last, self.digest.hexdigest()


def completed(ws: Workspace, result: BatchResult, batch: batches.BatchRecord) -> BatchResult:
    """The result of a batch completed by an earlier run: nothing issued now, the bundle as recorded."""
    if batch.bundle is None:
        raise StateError(f"batch {batch.batch_id} is complete but has no bundle on record")
    result.bundle, result.bundle_sha256 = ws.root / batch.bundle, batch.bundle_sha256
    serial_digest(ws, result)
    result.issued_before = batches.issued_count(ws.inventory, result.batch_id)
    return result


def complete(ws: Workspace, result: BatchResult, ca_name: str) -> BatchResult:
    """Write the bundle once, from the inventory, and close the batch in the inventory and the journal.

    The bundle and the serial list digest are made in one pass over the batch's rows, in the order recorded."""
    started = mark()
    relative = batches.bundle_artifact(result.batch_id)
    path = ws.root / relative
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a run killed while writing the bundle
    digest = hashlib.sha256()
    serials = _SerialDigest()
    with create(partial, what="bundles") as fh:
        for serial, der in batches.issued_serials_and_certificates(ws.inventory, result.batch_id):
            serials.add(serial)
            pem = pem_certificate(der)
            digest.update(pem)
            fh.write(pem)
    if path.exists():
        # A run killed between writing the bundle and closing the batch: the bundle must be this one.
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest.hexdigest():
            raise StateError(f"{path} does not hold this batch's certificates; inventory and bundle disagree")
        partial.unlink()
    else:
        os.rename(partial, path)
    serials.into(result)
    assert result.serials_sha256 is not None  # serials.into always sets it
    result.bundle, result.bundle_sha256 = path, digest.hexdigest()
    lap(result.stages, BUNDLE, started)
    with ws.inventory.transaction() as db:
        batches.complete_batch(
            db, result.batch_id, bundle=relative, bundle_sha256=result.bundle_sha256,
            completed_at=ws.clock.now().isoformat(),
        )  # fmt: skip
        ws.journal.append(
            BatchComplete(
                batch_id=result.batch_id,
                ca=ca_name,
                count=result.issued,
                first_serial=result.first_serial,
                last_serial=result.last_serial,
                serials_sha256=result.serials_sha256,
                outputs={relative: result.bundle_sha256},
            ),
        )
    return result
