"""The device list (the approved request): reading it, checking each row and its CSR, and packing what to sign."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.errors import InputError
from ceremony.fs import create
from ceremony.issue.batch.stages import CHECK_CSR, READ_CSR, Stages, lap, mark
from ceremony.model.csr import MAX_CSR_BYTES, csr_der
from ceremony.model.template import ECDSA_WITH_SHA256, P256_SPKI_PREFIX

#: The first columns of a device list's header, in this order (more columns may follow, each named).
COLUMNS = ("eui64", "usage", "csr")
#: A validated request, packed: EUI-64 (8) + usage (1: 0 ds, 1 ka) + P-256 point (65) + CSR SHA-256 (32). An
#: accepted request carries the CSR's DER after these bytes (archived with its certificate, by the parent: the
#: signing workers get the packed bytes only).
PACKED = 106
#: A csr cell naming a CSR of the inventory's archive by its SHA-256 (re-certification): ``recorded:<64 hex>``.
RECORDED = "recorded:"
_RECORDED_DIGEST = re.compile(r"^[0-9A-Fa-f]{64}$")
_EUI64 = re.compile(r"^[0-9A-Fa-f]{16}$")
_USAGES = frozenset({"ds", "ka"})
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256 = ec.SECP256R1()
_EMPTY_SUBJECT = b"\x30\x00"
_VERSION_1 = b"\x02\x01\x00"  # INTEGER 0

Row = tuple[int, str, str, str]  # (row number, eui64, usage, csr path as written)
#: The CSRs of a chunk's ``recorded:`` rows, by row number, as the parent took them from the inventory's archive
#: before the row checks: the DER (its digest checked, recorded for the row's EUI-64 and usage), or why not.
Recorded = dict[int, bytes | str]
#: How the parent looks recorded CSRs up: (EUI-64, usage, CSR SHA-256 hex) each -> the DER, or why not (one line);
#: ``Inventory.recorded_csrs``.
RecordedLookup = Callable[[Sequence[tuple[str, str, str]]], list[bytes | str]]


@dataclass(frozen=True)
class Reject:
    """A device-list row the batch will not issue, and why (one line)."""

    row: int
    eui64: str
    usage: str
    csr: str
    reason: str

    def line(self) -> str:
        return f"row {self.row} ({self.eui64 or '-'} {self.usage or '-'}, {self.csr or '-'}): {self.reason}"


#: The largest device list read (a million devices, two rows each, is about 100 MiB): a bigger file, or
#: anything but a regular file, is refused before its first byte is read.
MAX_DEVICE_LIST_BYTES = 512 << 20
#: The longest line of a device list, in bytes without its line ending (an EUI-64, a usage, a CSR path and a
#: few more columns need well under 1 KiB): a longer line is refused when the reader reaches it, unbuffered.
MAX_DEVICE_LINE_BYTES = 8 << 10
#: The longest field of any row, in characters, a quoted field spanning lines included (``csv.field_size_limit``
#: is process-wide state, so the cap is applied here, row by row).
MAX_DEVICE_FIELD_CHARS = 4096
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class DeviceList:
    """The list as read once (its bytes are what was approved); rows are parsed on each pass, not kept."""

    path: Path
    sha256: str
    data: bytes
    count: int

    @property
    def base(self) -> str:
        """The folder the CSR paths are relative to."""
        return str(self.path.parent)

    def _lines(self) -> Iterator[str]:
        # Decoded a block at a time, each block ending at a line end (never inside a UTF-8 sequence), so the
        # list is never decoded whole; lines split as str.splitlines splits, so a lone CR still ends a record.
        # Line lengths were checked when the list was read: a block always reaches a line end.
        data, start = self.data, 0
        while start < len(data):
            end = data.find(b"\n", min(start + _READ_BLOCK, len(data)) - 1)
            end = len(data) if end < 0 else end + 1
            text = data[start:end].decode("utf-8", errors="replace")
            yield from (text.removeprefix("\ufeff") if start == 0 else text).splitlines()
            start = end

    def records(self) -> Iterator[list[str]]:
        """Every CSV record, the header first, each field bounded (``MAX_DEVICE_FIELD_CHARS``).

        Raises:
            InputError: the CSV is malformed or a field is too long (naming the line, never quoting it).
        """
        reader = csv.reader(self._lines())
        try:
            for record in reader:
                if max(map(len, record), default=0) > MAX_DEVICE_FIELD_CHARS:
                    raise InputError(
                        f"{self.path}: line {reader.line_num} has a field over {MAX_DEVICE_FIELD_CHARS} characters"
                    )
                yield record
        except csv.Error as exc:
            reason = str(exc).split(" - ")[0]  # csv's own words name the fault, never the text
            raise InputError(f"{self.path}: line {reader.line_num} is not valid CSV ({reason})") from exc

    def rows(self) -> Iterator[Row]:
        records = self.records()
        next(records, None)
        for number, row in enumerate(records, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            cells = [c.strip() for c in row] + [""] * 3
            yield number, cells[0], cells[1].lower(), cells[2]


def _read_list(path: Path) -> bytes:
    """The bytes of a device list: a regular file (not a link, FIFO or device) within the caps, read in blocks
    with each line's length checked as it arrives (a 300 MB line is refused at its first 8 KiB)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        why = "a link is not followed; name the file itself" if exc.errno == errno.ELOOP else exc.strerror
        raise InputError(f"--devices: cannot read {path} ({why})") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"--devices: {path} is not a regular file")
        if status.st_size > MAX_DEVICE_LIST_BYTES:
            raise InputError(f"--devices: {path} is {status.st_size} bytes; the limit is {MAX_DEVICE_LIST_BYTES}")
        blocks: list[bytes] = []
        total = 0
        line, number = 0, 1  # bytes of the line being read so far, and its number
        while block := os.read(fd, _READ_BLOCK):
            total += len(block)
            if total > MAX_DEVICE_LIST_BYTES:
                raise InputError(f"--devices: {path} grew past the limit of {MAX_DEVICE_LIST_BYTES} bytes")
            parts = block.split(b"\n")  # the first continues the line before; the last may go on
            lengths = [line + len(parts[0]), *map(len, parts[1:])]
            if max(lengths) > MAX_DEVICE_LINE_BYTES:
                over = number + next(i for i, n in enumerate(lengths) if n > MAX_DEVICE_LINE_BYTES)
                raise InputError(f"{path}: line {over} is over {MAX_DEVICE_LINE_BYTES} bytes; not a device list")
            line, number = lengths[-1], number + len(parts) - 1
            blocks.append(block)
    except OSError as exc:
        raise InputError(f"--devices: cannot read {path} ({exc.strerror})") from None
    finally:
        os.close(fd)
    return b"".join(blocks)


def read_device_list(path: Path) -> DeviceList:
    """The CSV as written: a header whose first columns are ``eui64,usage,csr`` (more columns may follow, each
    named, none twice; they are not read); rows numbered from 2 (the header is row 1).

    Bounded: ``MAX_DEVICE_LIST_BYTES`` for the file, ``MAX_DEVICE_LINE_BYTES`` per line,
    ``MAX_DEVICE_FIELD_CHARS`` per field. Errors name the line and what is wrong, never its content (the file
    may not be the one meant).
    """
    data = _read_list(path)
    device_list = DeviceList(path, hashlib.sha256(data).hexdigest(), data, 0)
    header = next(device_list.records(), None)
    if header is None:
        raise InputError(f"{path}: the device list is empty (no header line {','.join(COLUMNS)})")
    fault = _header_fault([h.strip().lower() for h in header])
    if fault is not None:
        raise InputError(f"{path}: {fault}")
    count = sum(1 for _ in device_list.rows())
    if not count:
        raise InputError(f"{path}: the device list has no rows")
    return DeviceList(path, device_list.sha256, data, count)


def _header_fault(names: list[str]) -> str | None:
    """What is wrong with a header's column names, in one line naming the column (never quoting a name), or None."""
    wrong = next((i for i, (got, want) in enumerate(zip(names, COLUMNS, strict=False)) if got != want), None)
    if wrong is not None or len(names) < len(COLUMNS):
        why = f"column {wrong + 1} is not {COLUMNS[wrong]}" if wrong is not None else f"it has {len(names)} columns"
        return f"the header must start {','.join(COLUMNS)} ({why})"
    for i, name in enumerate(names[len(COLUMNS) :], start=len(COLUMNS)):
        if not name or name in names[:i]:
            why = "has no name" if not name else f"has the name of column {names.index(name) + 1}"
            return f"the header's further columns need names of their own (column {i + 1} {why})"
    return None


def recorded_digest(csr: str) -> str | None:
    """The SHA-256 (lower-case hex) a csr cell ``recorded:<64 hex>`` names, or None (not a well-formed one)."""
    digest = csr[len(RECORDED) :] if csr.startswith(RECORDED) else ""
    return digest.lower() if _RECORDED_DIGEST.match(digest) else None


def resolve_recorded(rows: list[Row], lookup: RecordedLookup | None) -> Recorded:
    """The archived CSRs of the rows naming one (``recorded:<sha256>``), looked up at once (in the parent, which
    holds the inventory: the workers check what they are given). ``lookup`` None: nothing is looked up, and such a
    row is refused by ``validate_row``."""
    wanted = [(number, eui64, usage, digest) for number, eui64, usage, csr in rows if (digest := recorded_digest(csr))]
    if not wanted or lookup is None:
        return {}
    found = lookup([(eui64.upper(), usage, digest) for _, eui64, usage, digest in wanted])
    return {number: outcome for (number, *_), outcome in zip(wanted, found, strict=True)}


def batched(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    """The rows in lists of ``size`` (the last one shorter)."""
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def batch_id_for(device_list: DeviceList, checked: list[bytes | Reject], ca: str, profile: str, rekey: bool) -> str:
    """The same list with the same CSRs, for the same CA, profile and re-key choice: the same batch."""
    digest = hashlib.sha256(f"{device_list.sha256}|{ca}|{profile}|{'rekey' if rekey else 'new'}".encode())
    for outcome in checked:
        digest.update(outcome[74:106] if isinstance(outcome, bytes) else b"reject")
    return "b-" + digest.hexdigest()[:20]


def identity_key(eui64: bytes | str, ka: bool) -> int:
    """(EUI-64, usage) as one integer: compact keys for lists of a million rows."""
    value = int(eui64, 16) if isinstance(eui64, str) else int.from_bytes(eui64, "big")
    return value << 1 | ka


# --- one row --------------------------------------------------------------------------------
def _split_csr(der: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """(certificationRequestInfo, signatureAlgorithm, signature, subject, subjectPKInfo) of a DER CSR, by offset.

    The framing is checked as DER (RFC 2986 section 4, X.690 10.1: each element's tag, a minimal definite
    length, each inside its parent with nothing left over; version v1; signature octets whole); the caller
    compares subject, subjectPKInfo and signatureAlgorithm byte for byte. The attributes' contents are not read.

    Raises:
        ValueError, IndexError: the bytes are not framed as a DER CSR.
    """

    def element(at: int, tag: int, limit: int) -> tuple[int, int]:
        # (start, end) of the contents of the element at ``at``, which must have ``tag`` and end by ``limit``.
        if der[at] != tag:
            raise ValueError(f"expected tag 0x{tag:02x} at {at}")
        length = der[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 3:
                raise ValueError("an indefinite or oversized length")
            length = int.from_bytes(der[at : at + count], "big")
            if length < 0x80 or der[at] == 0:
                raise ValueError("a length not in its shortest form")
            at += count
        if at + length > limit:
            raise ValueError("an element runs past its parent")
        return at, at + length

    body, end = element(0, 0x30, len(der))
    if end != len(der):
        raise ValueError("not one DER SEQUENCE")
    cri_start, cri_end = element(body, 0x30, end)
    _, version_end = element(cri_start, 0x02, cri_end)
    if der[cri_start:version_end] != _VERSION_1:
        raise ValueError("CSR version is not v1")
    _, subject_end = element(version_end, 0x30, cri_end)
    _, spki_end = element(subject_end, 0x30, cri_end)
    _, attributes_end = element(spki_end, 0xA0, cri_end)
    if attributes_end != cri_end:
        raise ValueError("certificationRequestInfo has data after its attributes")
    _, alg_end = element(cri_end, 0x30, end)
    bits_start, bits_end = element(alg_end, 0x03, end)
    if bits_end != end:
        raise ValueError("data between the signature and the end of the CSR")
    if der[bits_start] != 0:
        raise ValueError("signature BIT STRING has unused bits")
    return (
        der[body:cri_end],
        der[cri_end:alg_end],
        der[bits_start + 1 : bits_end],
        der[version_end:subject_end],
        der[subject_end:spki_end],
    )


def check_device_csr(der: bytes, *, ca_point: bytes | None) -> bytes | str:
    """The P-256 point of a device CSR given as DER (ecdsa-with-SHA256, empty subject, proof of possession,
    not the CA's own key), or why it is refused."""
    try:
        cri, alg, signature, subject, spki = _split_csr(der)
    except (ValueError, IndexError):
        return "CSR is not well-formed DER"
    if alg != ECDSA_WITH_SHA256:
        return "CSR is not signed with ecdsa-with-SHA256 (absent parameters)"
    if len(spki) != len(P256_SPKI_PREFIX) + 65 or not spki.startswith(P256_SPKI_PREFIX):
        return "CSR key is not an uncompressed P-256 point"
    if subject != _EMPTY_SUBJECT:
        return "a device CSR must have an empty subject (the identity comes from the device list)"
    point = spki[len(P256_SPKI_PREFIX) :]
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(_P256, point)
        public.verify(signature, cri, _ECDSA)
    except ValueError:
        return "CSR public key is not a valid P-256 point"
    except Exception:  # noqa: BLE001 - InvalidSignature and anything cryptography raises on bad bytes
        return "CSR signature does not verify (no proof of possession)"
    if point == ca_point:
        return "the CSR carries the CA's own public key"
    return point


def _read(path: str) -> bytes:
    """A CSR file's bytes, bounded like ``read_csr``: one open, one read of the size the file says it has (and one
    more byte, to see it grew), never a buffer of the cap for a file of a few hundred bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{path}: cannot read CSR ({exc.strerror})") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{path}: CSR is not a regular file")
        want = min(status.st_size, MAX_CSR_BYTES) + 1
        data = os.read(fd, want)
        if len(data) == want and want <= MAX_CSR_BYTES:  # it grew since fstat: read on, up to the cap
            data += os.read(fd, MAX_CSR_BYTES + 1 - want)
    except OSError as exc:
        raise InputError(f"{path}: cannot read CSR ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CSR_BYTES:
        raise InputError(f"{path}: CSR file is over the limit of {MAX_CSR_BYTES} bytes (1 MiB)")
    return data


def _row_csr(base: str, row: Row, recorded: bytes | str | None) -> bytes | Reject:
    """The first half of ``validate_row``: the row's fields, and its CSR's bytes (read, or as recorded), or why not."""
    number, eui64, usage, csr_path = row

    def reject(reason: str) -> Reject:
        return Reject(number, eui64, usage, csr_path, reason)

    if not _EUI64.match(eui64):
        return reject("EUI-64 must be 16 hex digits")
    if usage not in _USAGES:
        return reject("usage must be ds or ka")
    if not csr_path:
        return reject("no CSR path")
    if csr_path.startswith(RECORDED):
        # A CSR the inventory archived when it certified this identity before (re-certification under another CA).
        if recorded_digest(csr_path) is None:
            return reject(f"{RECORDED} must be followed by the CSR's SHA-256 (64 hex digits)")
        if recorded is None:
            return reject("a recorded CSR comes from the inventory's archive, which was not consulted")
        if isinstance(recorded, str):
            return reject(recorded)
        return recorded
    if os.path.isabs(csr_path) or os.path.normpath(csr_path).split(os.sep)[0] == "..":
        return reject("the CSR path leaves the device list's folder (absolute, or through ..)")
    try:
        der = _read(os.path.join(base, csr_path))
        if der[:1] != b"\x30":
            der = csr_der(der, csr_path)
    except InputError as exc:
        return reject(exc.message.split(": ", 1)[-1])
    return der


def _row_request(row: Row, der: bytes, ca_point: bytes | None) -> bytes | Reject:
    """The second half of ``validate_row``: the CSR checked (``check_device_csr``) and the request packed."""
    point = check_device_csr(der, ca_point=ca_point)
    if isinstance(point, str):
        return Reject(*row, point)
    return bytes.fromhex(row[1]) + (b"\x01" if row[2] == "ka" else b"\x00") + point + hashlib.sha256(der).digest() + der


def validate_row(base: str, row: Row, *, ca_point: bytes | None, recorded: bytes | str | None = None) -> bytes | Reject:
    """Check one row and its CSR (P-256, ecdsa-with-SHA256, proof of possession); pack it, or say why not.

    Args:
        base: The device list's folder; CSR paths are relative to it and may not leave it.
        row: One row of ``DeviceList.rows``.
        ca_point: The issuing CA's public key (uncompressed point): a CSR for that key is refused.
            None only where there is no CA (fuzzing the row checks alone).
        recorded: For a row whose csr is ``recorded:<sha256>``: the archived CSR the parent looked up
            (``resolve_recorded``), or why there is none; it is checked as a CSR file is.

    Returns:
        The request packed (see ``PACKED``) followed by the CSR's DER, or the row's ``Reject``.
    """
    der = _row_csr(base, row, recorded)
    return der if isinstance(der, Reject) else _row_request(row, der, ca_point)


def validate_chunk(
    base: str, ca_point: bytes, work: tuple[list[Row], Recorded], stages: Stages | None = None
) -> list[bytes | Reject]:
    """``validate_row`` over a chunk of rows with their recorded CSRs (the unit of work a pool worker gets): every
    row's CSR read first, then every CSR checked, each stage timed into ``stages`` when given."""
    rows, recorded = work
    started = mark()
    ders = [_row_csr(base, row, recorded.get(row[0])) for row in rows]
    read = lap(stages, READ_CSR, started)
    out = [d if isinstance(d, Reject) else _row_request(row, d, ca_point) for row, d in zip(rows, ders, strict=True)]
    lap(stages, CHECK_CSR, read)
    return out


# --- the whole list -------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """What a batch run will issue, in row order, and the rows it will not (with the rows that failed their checks)."""

    accepted: list[bytes]
    rejected: list[Reject]


def select_requests(
    device_list: DeviceList, checked: Sequence[bytes | Reject], *, done: set[int], valid: set[int]
) -> Selection:
    """The valid requests still to issue: not issued by this batch already (``done``), not twice in the list,
    and not for an identity that already has a valid certificate from this CA (``valid``; empty for a re-key).

    ``done`` and ``valid`` hold ``identity_key`` values; ``checked`` has one outcome per row, in row order. The
    list is parsed again only when a row is refused here (its reject names the row as written)."""
    seen: dict[int, int] = {}  # identity -> index of its first row in ``checked``
    accepted: list[bytes] = []
    slots: list[Reject | tuple[int, int | None]] = []  # a reject, or (index, index of the row it repeats | None)
    for index, outcome in enumerate(checked):
        if isinstance(outcome, Reject):
            slots.append(outcome)
            continue
        identity = identity_key(outcome[:8], bool(outcome[8]))
        first = seen.get(identity)
        if first is not None:
            slots.append((index, first))
            continue
        seen[identity] = index
        if identity in done:
            continue
        if identity in valid:
            slots.append((index, None))
            continue
        accepted.append(outcome)
    wanted = {i for slot in slots if isinstance(slot, tuple) for i in slot if i is not None}
    rows = {i: row for i, row in enumerate(device_list.rows()) if i in wanted} if wanted else {}
    rejected: list[Reject] = []
    for slot in slots:
        if isinstance(slot, Reject):
            rejected.append(slot)
            continue
        index, repeats = slot
        if repeats is not None:
            rejected.append(Reject(*rows[index], f"the same EUI-64 and usage as row {rows[repeats][0]}"))
        else:
            reason = "already has a valid certificate from this CA (revoke it, or ask for a re-key with --rekey)"
            rejected.append(Reject(*rows[index], reason))
    return Selection(accepted, rejected)


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """The rejects as CSV in a new file the operator named (``--skip-rejected``)."""
    with create(path, what="rejects files", text=True) as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "eui64", "usage", "csr", "reason"])
        for r in rejects:
            writer.writerow([r.row, r.eui64, r.usage, r.csr, r.reason])
