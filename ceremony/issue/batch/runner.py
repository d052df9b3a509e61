"""The chunk runner: a batch's rows checked and its certificates signed in this process or in forked pool workers."""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.issue.batch.devices import (
    PACKED,
    DeviceList,
    Recorded,
    RecordedLookup,
    Reject,
    Row,
    batched,
    resolve_recorded,
    validate_chunk,
)
from ceremony.issue.batch.plan import BatchPlan
from ceremony.issue.batch.stages import FILL, SAMPLE, SIGN, VERIFY, Stages, lap, mark
from ceremony.lint.findings import failing
from ceremony.lint.template import check_certificates
from ceremony.model.template import assemble, new_serials
from ceremony.record.batches import SignedInBatch

CHUNK = 1024
_ECDSA = ec.ECDSA(hashes.SHA256())
T = TypeVar("T")
R = TypeVar("R")
ChunkResult = list[SignedInBatch] | str  # a chunk signed and verified, or why it was refused


def chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, list[T]]]:
    """(index of its first item, the items) for each chunk of ``size``."""
    for start in range(0, len(items), size):
        yield start, list(items[start : start + size])


def sampler(batch_id: str, total: int, rate: float) -> Callable[[int], bool]:
    """Which certificates of a run get the full post-issuance checks: the first, the last, and ``rate`` of the
    rest, chosen by the batch id (the same on every run and whatever the chunking)."""
    threshold = int(rate * 2**32)

    def sample(index: int) -> bool:
        if index in (0, total - 1):
            return True
        digest = hashlib.sha256(f"{batch_id}:{index}".encode()).digest()
        return int.from_bytes(digest[:4], "big") < threshold

    return sample


class _NoBar:
    """What a bar that is switched off does: nothing (and no tqdm, nor ipywidgets, imported for it)."""

    def update(self, n: int) -> None:
        """Nothing to show."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(total: int, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar (None: shown on a terminal only; False: none at all)."""
    if enabled is False:
        return _NoBar()
    try:  # a widget in JupyterLab (the lab extra installs ipywidgets), text on a terminal
        import ipywidgets  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401  (present or not)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="cert", disable=None if enabled is None else not enabled, leave=False)


def issue_chunk(plan: BatchPlan, start: int, items: list[bytes], stages: Stages | None = None) -> ChunkResult:
    """Sign one chunk: fill the template, sign, verify each signature, assemble, lint; issuer checks on the sample.

    ``start`` is the index of the chunk's first request among the run's ``plan.total``. Each step runs over the
    whole chunk before the next (tight loops, and one stopwatch reading per step: ``stages``, when given).
    """
    key, ca_public, templates, not_before = plan.key, plan.ca_public, plan.templates, plan.not_before
    started = mark()
    serials = new_serials(len(items))
    filled = [
        templates[packed[8]].fill(serial, not_before, packed[9:74], packed[:8])
        for serial, packed in zip(serials, items, strict=True)
    ]
    at = lap(stages, FILL, started)
    sign = key.sign
    signatures = [sign(tbs, _ECDSA) for tbs, _ in filled]
    at = lap(stages, SIGN, at)
    verify = ca_public.verify
    for serial, (tbs, _), signature in zip(serials, filled, signatures, strict=True):
        try:
            verify(signature, tbs, _ECDSA)
        except Exception:  # noqa: BLE001 - any failure here is a refusal of the whole chunk
            return f"the CA signature over serial {serial.hex().upper()} does not verify"
    at = lap(stages, VERIFY, at)
    ders = [assemble(tbs, signature) for (tbs, _), signature in zip(filled, signatures, strict=True)]
    at = lap(stages, FILL, at)
    # Every certificate: the profile lint, through the template path (the full lint's findings; the signatures
    # were verified above). The sample: the same with the issuer too (issuer name, AKI, validity within it).
    sample = sampler(plan.batch_id, plan.total, plan.sample_rate)
    sampled = [offset for offset in range(len(ders)) if sample(start + offset)]
    for offsets, issuer in ((range(len(ders)), None), (sampled, plan.issuer_cert)):
        linted = check_certificates([ders[n] for n in offsets], plan.profile, issuer=issuer)
        for offset, findings in zip(offsets, linted.findings, strict=True):
            problems = failing(findings)
            if problems:
                return f"post-issuance check of serial {serials[offset].hex().upper()} failed: {problems[0]}"
    lap(stages, SAMPLE, at)
    return [
        SignedInBatch(serial, not_before, der, ski, packed[:8], bool(packed[8]), packed[74:106])
        for serial, (_, ski), der, packed in zip(serials, filled, ders, items, strict=True)
    ]


# --- forked pool workers ----------------------------------------------------------------------
#: The plan of this pool worker: set by ``_enter_worker``, the pool's initializer, inside each worker process,
#: never in the process that makes the pool (which passes the plan to ``issue_chunk`` itself). It is the one
#: module-level value written at run time, because it has to be: ``Pool.imap`` sends a task's function by name,
#: and the plan cannot travel with the task (the CA key object cannot be pickled: a token key's store holds the
#: PIN; it is inherited through fork, and opens its own session in the worker), so the function a worker runs
#: finds the plan its initializer was given here.
_WORKER: list[BatchPlan] = []


def _enter_worker(plan: BatchPlan, pool_maker: int) -> None:
    """A pool worker's initializer: keep the plan given to it (inherited through fork, never pickled)."""
    if os.getpid() == pool_maker:
        raise RuntimeError("a batch plan is kept in forked pool workers only")
    _WORKER[:] = [plan]


def _issue_in_worker(work: tuple[int, list[bytes]]) -> ChunkResult:
    start, items = work
    return issue_chunk(_WORKER[0], start, items)


@contextmanager
def _pool(jobs: int, plan: BatchPlan | None = None) -> Iterator[Pool | None]:
    """``jobs`` forked workers, each given ``plan`` by its initializer; None for one job (this process)."""
    if jobs == 1:
        yield None
        return
    context = multiprocessing.get_context("fork")  # the plan's CA key is inherited, never pickled
    if plan is None:
        pool = context.Pool(jobs)
    else:
        pool = context.Pool(jobs, initializer=_enter_worker, initargs=(plan, os.getpid()))
    try:
        yield pool
    finally:
        pool.close()
        pool.join()


def _in_order(pool: Pool, fn: Callable[[T], R], work: Iterable[T], window: int) -> Iterator[R]:
    """``fn`` over ``work`` in the pool's workers, results in order, at most ``window`` tasks out at a time.

    Unlike ``Pool.imap``, whose task thread draws ``work``, the items are drawn here, in the calling thread: drawing
    one may query the inventory (``resolve_recorded``), whose connection belongs to this thread."""
    pending: deque[Any] = deque()
    for item in work:
        pending.append(pool.apply_async(fn, (item,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def check_rows(
    device_list: DeviceList,
    *,
    ca_point: bytes,
    jobs: int,
    progress: bool | None,
    chunk: int,
    recorded: RecordedLookup | None = None,
    stages: Stages | None = None,
) -> list[bytes | Reject]:
    """Every row checked, CSRs verified (in the workers); in row order, one packed request (followed by its CSR's
    DER) or reject per row. ``recorded`` looks up the archived CSRs of ``recorded:`` rows, a chunk at a time, in
    this process, before the workers check them (None: such rows are refused). ``stages``: the time of each
    check step, when they run in this process (one job)."""
    check = functools.partial(validate_chunk, device_list.base, ca_point)
    if jobs == 1:
        check = functools.partial(validate_chunk, device_list.base, ca_point, stages=stages)

    def work() -> Iterator[tuple[list[Row], Recorded]]:
        for rows in batched(device_list.rows(), chunk):
            yield rows, resolve_recorded(rows, recorded)

    checked: list[bytes | Reject] = []
    with _pool(jobs) as pool, progress_bar(device_list.count, "validate", progress) as bar:
        for outcomes in map(check, work()) if pool is None else _in_order(pool, check, work(), 2 * jobs):
            checked += outcomes
            bar.update(len(outcomes))
    return checked


@contextmanager
def signing(
    plan: BatchPlan, accepted: list[bytes], *, jobs: int, chunk: int, stages: Stages | None = None
) -> Iterator[Iterator[ChunkResult]]:
    """Each chunk of ``accepted`` signed, in order: in this process (its steps timed into ``stages``, when given),
    or by ``jobs`` forked workers given ``plan`` (sent each request's packed bytes only: the CSR after them stays
    here, for the inventory)."""
    work = chunks(accepted, chunk)
    with _pool(jobs if accepted else 1, plan) as pool:
        if pool is None:
            yield (issue_chunk(plan, start, items, stages) for start, items in work)
        else:
            yield pool.imap(_issue_in_worker, ((start, [r[:PACKED] for r in items]) for start, items in work))
