"""RFC 3161 trusted time: the one module that speaks to the workspace's time-stamping authority (TSA), and that
stores and checks its timestamp tokens (``workspace.yaml`` ``timestamping:``; none named, nothing here runs).

What each token stamps (its message imprint is SHA-256 over these bytes):

- a transcript's seal: the seal entry's ``hash`` (its 32 bytes), which covers the whole chain and the CA key's seal
  signature, as an attestation does. The token is ``<id>.seal.tsr`` beside the seal; ``<id>.timestamps.log`` beside
  it (hash-chained JSON lines like every log here, named ``.log`` so that no reader of ``transcripts/*.jsonl``
  takes it for a transcript) records when: the seal's time by the workspace's clock (``made_at``), the TSA's
  (``gen_time``) and how long after;
- a journal checkpoint: its signed bytes followed by its signature (:func:`checkpoint_message`), so that the token
  vouches for the signed checkpoint whichever log carries it (the journal, ``checkpoints.jsonl``). The token is
  ``timestamping/checkpoints/checkpoint-<n>.tsr``; the checkpoint's signed fields are not changed;
- an evidence pack's manifest: manifest.json's bytes (``manifest.json.tsr``, outside the manifest like its
  signature; ``openssl ts -verify -data manifest.json -in manifest.json.tsr -CAfile timestamping/tsa-chain.pem``).

Every token obtained is recorded in the operations journal (and a seal's in its ``.timestamps.log``) as a
``timestamp.token`` event. A token proves that the bytes existed no later than its genTime, as far as the TSA is
trusted. A TSA out of reach (refused, timed out, an HTTP error or a redirect, which is never followed, an answer
over 64 KiB or one that is no token verifying under the chain) never stops an operation: the request is deferred
(:class:`Deferred`, a one-line reason) and :func:`stamp_pending` stamps what is still unstamped at the next online
step (a ceremony's start, issuance, a CRL, an evidence pack, ``ceremony transcript timestamp``). A seal made offline
and stamped later is proven to exist only from that later time.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ceremony.errors import CeremonyError, ConfigError, InputError
from ceremony.fs import read_regular, workspace_of, write_once
from ceremony.model.config import load_model
from ceremony.model.events import Event, TimestampToken
from ceremony.record.checkpoints import CHECKPOINTS_FILE, signed_bytes
from ceremony.record.transcript import Journal, read_entries, verify_transcript
from ceremony.record.workspace import WORKSPACE_FILE, Workspace, WorkspaceConfig

#: The largest answer read from a TSA, and the largest token file read back (a token is a few KiB).
TOKEN_LIMIT = 64 << 10
#: The largest TSA certificate chain read.
CHAIN_LIMIT = 1 << 20
#: What a token stamps (a ``timestamp.token`` event's ``subject``).
SEAL = "transcript seal"
CHECKPOINT = "journal checkpoint"
#: Beside a transcript ``<id>.jsonl``: its seal's token, and the log of when it was obtained.
SEAL_TOKEN = ".seal.tsr"  # noqa: S105 - a file suffix, not a secret
TIMESTAMPS_LOG = ".timestamps.log"
#: The files a sealed transcript may have beside it for its timestamp (an evidence pack carries them).
TRANSCRIPT_FILES = (SEAL_TOKEN, TIMESTAMPS_LOG)
#: Checkpoint tokens, relative to the workspace (and to an evidence pack, which carries them).
CHECKPOINT_TOKENS = "timestamping/checkpoints"
#: The TSA chain an evidence pack carries (listed in its manifest).
PACK_CHAIN = "timestamping/tsa-chain.pem"
_NOT_YET = "not yet timestamped (the next online step stamps it: `ceremony transcript timestamp`)"


# --- the TSA and its chain ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TsaChain:
    """A TSA's certificate chain: its own certificate first, then its issuers up to the root tokens chain to."""

    certificates: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def name(self) -> str:
        """The TSA certificate's common name (its whole subject when it has none)."""
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.certificate.subject.rfc4514_string()

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the TSA certificate's DER."""
        return hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    def pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)


def _chain_problem(certificates: tuple[x509.Certificate, ...]) -> str | None:
    try:
        usage = certificates[0].extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.critical or ExtendedKeyUsageOID.TIME_STAMPING not in usage.value:
        return "its first certificate is no TSA's (RFC 3161 2.3: extendedKeyUsage timeStamping, critical)"
    for number, (child, issuer) in enumerate(zip(certificates, certificates[1:], strict=False), start=1):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return f"certificate {number} is not issued by certificate {number + 1} (the TSA's first, then its issuers)"
    try:
        certificates[-1].verify_directly_issued_by(certificates[-1])
    except (ValueError, TypeError, InvalidSignature):
        return "its last certificate is not a self-signed root (the chain ends at the root tokens are verified under)"
    return None


def load_chain(path: Path, *, error: type[CeremonyError] = InputError, root: Path | None = None) -> TsaChain:
    """The TSA chain in the PEM file ``path`` (bounded, never through a link below ``root``), checked: the TSA's
    certificate (extendedKeyUsage timeStamping, critical) first, each issued by the next, a self-signed root last.

    Raises:
        CeremonyError: (of kind ``error``) a file that cannot be read or is no such chain, in one line.
    """
    try:
        data = read_regular(path, CHAIN_LIMIT, "TSA certificate chain", root=root)
    except CeremonyError as exc:
        raise error(exc.message) from None
    try:
        certificates = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise error(f"{path}: not a PEM certificate chain (the TSA's certificate, then its issuers)") from None
    problem = _chain_problem(certificates)
    if problem is not None:
        raise error(f"{path}: {problem}")
    return TsaChain(certificates)


@dataclass(frozen=True)
class Authority:
    """The workspace's time-stamping authority: where requests go, its chain, how long one may take."""

    url: str
    chain: TsaChain
    timeout: float


def workspace_authority(ws: Workspace) -> Authority | None:
    """The TSA ``workspace.yaml`` names (None: none is named).

    Raises:
        ConfigError: its chain (``timestamping.certificate``) cannot be read or is no TSA chain.
    """
    config = ws.config.timestamping
    if config is None:
        return None
    try:
        chain = load_chain(ws.root / config.certificate, error=ConfigError, root=ws.root)
    except ConfigError as exc:
        raise ConfigError(f"{ws.root / WORKSPACE_FILE}: timestamping.certificate: {exc.message}") from None
    return Authority(config.url, chain, config.timeout_seconds)


# --- requesting and checking a token ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Stamp:
    """A token the TSA granted, verified: the DER TimeStampResp as stored, its genTime, the TSA, and how far its
    genTime may be from the true time (``slack``, seconds: see :class:`TokenCheck`)."""

    token: bytes
    gen_time: datetime
    tsa: str
    tsa_sha256: str
    slack: float = 0.0


@dataclass(frozen=True)
class Deferred:
    """No token now (the TSA out of reach, or its answer no good token): why, in one line."""

    reason: str


@dataclass(frozen=True)
class TokenCheck:
    """The verdict on one token: ``ok``, a one-line message, and (when ok) its genTime, the TSA's name and ``slack``:
    how far the genTime may be from the true time, in seconds (the accuracy the token states, plus a second when the
    genTime is written in whole seconds, as many TSAs write it)."""

    ok: bool
    message: str
    gen_time: datetime | None = None
    tsa: str | None = None
    slack: float = 0.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a refusal: the request never goes where the workspace did not name."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        return None  # urllib then raises the 3xx as an HTTPError


def _why(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return str(reason).splitlines()[0] if str(reason) else type(reason).__name__


def shown_url(url: str) -> str:
    """The TSA's address as messages name it: without any user or password it carries."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def exchange(authority: Authority, query: bytes) -> bytes | Deferred:
    """POST one DER TimeStampReq to the TSA and return its answer's bytes (not yet checked), or why there is none:
    refused, timed out, an HTTP error, a redirect (never followed) or an answer over :data:`TOKEN_LIMIT`. Never
    raises for the TSA. Every request to the TSA goes through here (report.pdf's PAdES timestamp too)."""
    url, shown = authority.url, shown_url(authority.url)
    request = urllib.request.Request(  # noqa: S310 - the scheme is http(s), checked in TimestampingConfig
        url,
        data=query,
        method="POST",
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
    )
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=authority.timeout) as answer:
            body: bytes = answer.read(TOKEN_LIMIT + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            return Deferred(f"the TSA at {shown} answered with a redirect (HTTP {exc.code}), which is never followed")
        return Deferred(f"the TSA at {shown} answered HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return Deferred(f"the TSA at {shown} is out of reach ({_why(exc.reason, authority.timeout)})")
    except (OSError, http.client.HTTPException) as exc:
        return Deferred(f"the TSA at {shown} is out of reach ({_why(exc, authority.timeout)})")
    if len(body) > TOKEN_LIMIT:
        return Deferred(f"the TSA at {shown} answered with over {TOKEN_LIMIT >> 10} KiB, which is no timestamp token")
    return body


def request_stamp(authority: Authority, data: bytes) -> Stamp | Deferred:
    """Ask the TSA for a token over ``data`` (SHA-256 imprint, a random nonce, its certificate requested) and verify
    the answer at once (granted, the imprint and the nonce, its signature chaining to the chain's root, the TSA
    certificate's extendedKeyUsage). Never raises for the TSA: whatever keeps a good token from coming is deferred."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    query = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    body = exchange(authority, query.as_bytes())
    if isinstance(body, Deferred):
        return body
    shown = shown_url(authority.url)
    check = check_token(body, data, authority.chain, nonce=query.nonce)
    if not check.ok or check.gen_time is None:
        return Deferred(f"the TSA at {shown} answered, but not with a token that verifies: {check.message}")
    return Stamp(body, check.gen_time, authority.chain.name, authority.chain.fingerprint, check.slack)


#: rfc3161-client's reasons (by how they begin), as an operator reads them.
_REASONS = (
    ("Mismatch between messages", "it is over other data (its message imprint is not that of what it stamps)"),
    ("Nonce mismatch", "its nonce is not the request's"),
    ("Embedded certificate does not match", "it is signed by another certificate than the TSA chain's"),
    ("The certificate details does not match", "it is signed by another certificate than the TSA chain's"),
    ("Error while verifying certificates", "its signature does not verify under the TSA chain"),
    ("The certificate does not contain the critical EKU", "its signer is no TSA (extendedKeyUsage timeStamping)"),
    ("The EKU extension", "its signer is no TSA (extendedKeyUsage timeStamping, critical)"),
    ("Certificates neither found", "it carries no certificate"),
    ("No leaf certificate found", "its signer's certificate is not in it"),
    ("Expected exactly one SignerInfo", "it has not exactly one signer"),
    ("Unsupported hash algorithm", "its message imprint uses a digest other than SHA-256, SHA-384 or SHA-512"),
    ("PKIStatus is not GRANTED", "the TSA did not grant it"),
)


def _reason(text: str) -> str:
    return next((said for start, said in _REASONS if text.startswith(start)), text.splitlines()[0][:120])


def _utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _iso(when: datetime) -> str:
    return _utc(when).isoformat().replace("+00:00", "Z")


def check_token(token: bytes, data: bytes, chain: TsaChain, *, nonce: int | None = None) -> TokenCheck:
    """Whether ``token`` (a DER TimeStampResp) is a granted token over ``data``, signed by the chain's TSA
    certificate (extendedKeyUsage timeStamping) and chaining to its root at the token's genTime (and, when given,
    carries ``nonce``). Never raises for a bad token: the verdict says what is wrong."""
    from rfc3161_client import PKIStatus, VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
    except ValueError:
        return TokenCheck(False, "not an RFC 3161 timestamp response (a DER TimeStampResp)")
    if response.status != PKIStatus.GRANTED:
        said = "; ".join(response.status_string)[:120]
        return TokenCheck(False, f"the TSA did not grant it (status {response.status}{': ' + said if said else ''})")
    certificates = chain.certificates
    builder = VerifierBuilder(
        tsa_certificate=certificates[0],
        intermediates=list(certificates[1:-1]),
        roots=[certificates[-1]],
        nonce=nonce,
    )
    try:
        builder.build().verify_message(response, data)
        gen_time = _utc(response.tst_info.gen_time)
    except VerificationError as exc:
        return TokenCheck(False, _reason(str(exc)))
    except ValueError as exc:
        return TokenCheck(False, f"it cannot be taken apart ({_reason(str(exc))})")
    message = f"timestamped by {chain.name} at {_iso(gen_time)}"
    return TokenCheck(True, message, gen_time, chain.name, _slack(response.tst_info, gen_time))


def _slack(info: Any, gen_time: datetime) -> float:
    """How far a genTime may be from the true time: the token's accuracy (RFC 3161 2.4.2; none stated: 0), plus a
    second when it is written in whole seconds."""
    try:
        accuracy = info.accuracy
        stated = (
            (accuracy.seconds or 0) + (accuracy.millis or 0) / 1e3 + (accuracy.micros or 0) / 1e6 if accuracy else 0
        )
    except (AttributeError, ValueError):
        stated = 0
    return float(stated) + (1.0 if gen_time.microsecond == 0 else 0.0)


def check_token_file(path: Path, data: bytes, chain: TsaChain, *, root: Path | None = None) -> TokenCheck:
    """:func:`check_token` for the token stored at ``path`` (a regular file of at most 64 KiB)."""
    try:
        token = read_regular(path, TOKEN_LIMIT, "timestamp token", root=root)
    except CeremonyError as exc:
        return TokenCheck(False, exc.message)
    return check_token(token, data, chain)


# --- what is stamped, and where its token rests ------------------------------------------------------------------
def seal_token_path(transcript: Path) -> Path:
    return transcript.with_suffix(SEAL_TOKEN)


def timestamps_log(transcript: Path) -> Path:
    """The log of when a transcript's seal was timestamped (``<id>.timestamps.log``)."""
    return transcript.with_suffix(TIMESTAMPS_LOG)


def seal_message(seal: Mapping[str, Any]) -> bytes:
    """What a seal's token stamps: the seal entry's hash (32 bytes).

    Raises:
        ValueError: the entry's ``hash`` is not hex.
    """
    return bytes.fromhex(str(seal.get("hash")))


def checkpoint_message(record: Mapping[str, Any]) -> bytes:
    """What a checkpoint's token stamps: the bytes its signature is over, then the signature (DER).

    Raises:
        ValueError: the record's ``signature`` is not hex.
    """
    return signed_bytes(dict(record)) + bytes.fromhex(str(record.get("signature")))


def checkpoint_token_path(root: Path, number: int) -> Path:
    return root / CHECKPOINT_TOKENS / f"checkpoint-{number}.tsr"


def _after(seconds: float, what: str, slack: float) -> str:
    """How long after ``what`` (by the workspace's clock) a token's genTime is, in words; a genTime before it by more
    than the token's ``slack`` means the two clocks disagree."""
    if seconds >= 0:
        return f"{seconds:.0f} s after {what}"
    if -seconds <= slack:
        return f"at {what}, to within the TSA's accuracy of {slack:g} s"
    return f"{-seconds:.0f} s before {what} by the workspace's clock: the two clocks disagree"


# --- stamping what is pending -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pending:
    subject: str
    stamped: str
    message: bytes
    made_at: datetime
    token: Path
    log: Path | None

    def describe(self) -> str:
        return f"the seal of {self.stamped}" if self.subject == SEAL else f"checkpoint {self.stamped}"


@dataclass(frozen=True)
class Stamped:
    """One token obtained, verified and stored."""

    subject: str
    stamped: str
    token: Path
    made_at: datetime
    gen_time: datetime
    tsa: str
    slack: float = 0.0

    @property
    def after_seconds(self) -> float:
        return round((self.gen_time - self.made_at).total_seconds(), 3)

    def describe(self) -> str:
        what, made = (
            (f"the seal of {self.stamped}", "the seal")
            if self.subject == SEAL
            else (f"checkpoint {self.stamped}", "its signature")
        )
        after = _after(self.after_seconds, made, self.slack)
        return f"{what}: timestamped by {self.tsa} at {_iso(self.gen_time)} ({after})"

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "stamped": self.stamped,
            "token": str(self.token),
            "made_at": self.made_at.isoformat(),
            "gen_time": _iso(self.gen_time),
            "after_seconds": self.after_seconds,
            "tsa": self.tsa,
        }


@dataclass(frozen=True)
class StampReport:
    """What :func:`stamp_pending` did: the tokens it obtained, what is still pending and why, and what it could not
    stamp at all (a transcript that does not verify). Nothing at all when the workspace names no TSA."""

    configured: bool
    stamped: tuple[Stamped, ...] = ()
    pending: tuple[str, ...] = ()
    deferred: str | None = None
    problems: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What to tell the operator, a line each (none when no TSA is named)."""
        out = [s.describe() for s in self.stamped]
        if self.pending:
            out.append(
                f"not yet timestamped: {', '.join(self.pending)}: {self.deferred}; the next online step stamps "
                "them (`ceremony transcript timestamp`)"
            )
        return out + list(self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "stamped": [s.to_json() for s in self.stamped],
            "pending": list(self.pending),
            "deferred": self.deferred,
            "problems": list(self.problems),
        }


def _time(text: Any) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(str(text)))
    except ValueError:
        return None


def _pending_seals(ws: Workspace, problems: list[str]) -> list[_Pending]:
    found: list[_Pending] = []
    if not ws.transcripts_dir.is_dir():
        return found
    for seal_file in sorted(ws.transcripts_dir.glob("*.seal.json")):
        transcript = seal_file.with_name(seal_file.name.removesuffix(".seal.json") + ".jsonl")
        relative = transcript.relative_to(ws.root).as_posix()
        if os.path.lexists(seal_token_path(transcript)):
            continue
        report = verify_transcript(transcript)
        if not report.ok:
            problems.append(f"the seal of {relative} is not timestamped: {report.message}")
            continue
        seal = read_entries(transcript)[-1]
        made_at = _time(seal.get("time"))
        if made_at is None:
            problems.append(f"the seal of {relative} is not timestamped: its time {seal.get('time')!r} is no time")
            continue
        found.append(_Pending(SEAL, relative, seal_message(seal), made_at, seal_token_path(transcript),
                              timestamps_log(transcript)))  # fmt: skip
    return found


def _pending_checkpoints(ws: Workspace, problems: list[str]) -> list[_Pending]:
    found: list[_Pending] = []
    try:
        records = read_entries(ws.root / CHECKPOINTS_FILE)
    except CeremonyError as exc:
        problems.append(f"no checkpoint is timestamped: {exc.message}")
        return found
    for record in records:
        if record.get("event") != Event.JOURNAL_CHECKPOINT:
            continue
        try:
            number, message = int(record["checkpoint"]), checkpoint_message(record)
        except (KeyError, TypeError, ValueError):
            problems.append(
                f"a checkpoint of {CHECKPOINTS_FILE} (line {record.get('seq')}) is not one; not timestamped"
            )
            continue
        token = checkpoint_token_path(ws.root, number)
        made_at = _time(record.get("signed_at"))
        if os.path.lexists(token):
            continue
        if made_at is None:
            problems.append(f"checkpoint {number} is not timestamped: its signed_at is no time")
            continue
        found.append(_Pending(CHECKPOINT, str(number), message, made_at, token, None))
    return found


def _store(ws: Workspace, item: _Pending, stamp: Stamp) -> Stamped:
    """Write the token (write-once), then record it: in the transcript's timestamps log (a seal's) and the journal."""
    digest = write_once(item.token, stamp.token, what="timestamp tokens", root=ws.root)
    stamped = Stamped(item.subject, item.stamped, item.token, item.made_at, stamp.gen_time, stamp.tsa, stamp.slack)
    record = TimestampToken(
        subject=item.subject,
        stamped=item.stamped,
        imprint=hashlib.sha256(item.message).hexdigest(),
        made_at=item.made_at.isoformat(timespec="microseconds"),
        gen_time=_iso(stamp.gen_time),
        after_seconds=stamped.after_seconds,
        token=item.token.relative_to(ws.root).as_posix(),
        token_sha256=digest,
        tsa=stamp.tsa_sha256,
        tsa_name=stamp.tsa,
    )
    if item.log is not None:
        Journal(item.log, ws.clock).append(record)
    ws.journal.append(record)
    return stamped


def stamp_pending(ws: Workspace) -> StampReport:
    """Timestamp every sealed transcript and every journal checkpoint of ``ws`` that has no token yet, each token
    verified before it is stored and recorded. The first request the TSA does not answer with a good token stops
    the pass: the rest stays pending, for the next online step. Never raises for the TSA or its configuration (an
    operation this runs after has happened): :attr:`StampReport.deferred` says why nothing more was stamped. A
    workspace that names no TSA: nothing is read or written."""
    if ws.config.timestamping is None:
        return StampReport(configured=False)
    problems: list[str] = []
    pending = _pending_seals(ws, problems) + _pending_checkpoints(ws, problems)
    if not pending:
        return StampReport(True, problems=tuple(problems))
    try:
        authority = workspace_authority(ws)
    except CeremonyError as exc:
        return StampReport(True, pending=tuple(p.describe() for p in pending), deferred=exc.message,
                           problems=tuple(problems))  # fmt: skip
    assert authority is not None
    done: list[Stamped] = []
    for number, item in enumerate(pending):
        stamp = request_stamp(authority, item.message)
        if isinstance(stamp, Deferred):
            return StampReport(True, tuple(done), tuple(p.describe() for p in pending[number:]), stamp.reason,
                               tuple(problems))  # fmt: skip
        try:
            done.append(_store(ws, item, stamp))
        except CeremonyError as exc:
            problems.append(f"{item.describe()} is not timestamped: {exc.message}")
    return StampReport(True, tuple(done), problems=tuple(problems))


# --- verifying what was stamped ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SealTimestamp:
    """The verdict on a sealed transcript's timestamp: ``ok`` False only for a token that does not verify, or that
    cannot be checked (no chain to check it under)."""

    ok: bool
    message: str


@dataclass(frozen=True)
class _Expected:
    """Where a transcript's seal token would be checked: the chain (None: ``why``), and who expects a token (None:
    nobody; ``workspace``: its workspace names a TSA; ``pack``: the evidence pack it lies in carries a chain)."""

    chain: TsaChain | None
    why: str | None
    by: str | None


def _expected(transcript: Path) -> _Expected:
    ws_root = workspace_of(transcript)
    if ws_root is not None and transcript.parent.resolve() == (ws_root / "transcripts").resolve():
        try:
            config = load_model(WorkspaceConfig, ws_root / WORKSPACE_FILE).timestamping
        except CeremonyError as exc:
            return _Expected(None, exc.message, None)
        if config is None:
            return _Expected(None, f"{ws_root / WORKSPACE_FILE} names no TSA (timestamping:)", None)
        try:
            return _Expected(
                load_chain(ws_root / config.certificate, error=ConfigError, root=ws_root), None, "workspace"
            )
        except CeremonyError as exc:
            return _Expected(None, exc.message, "workspace")
    carried = transcript.parent.parent / PACK_CHAIN
    if os.path.lexists(carried):
        try:
            return _Expected(load_chain(carried), None, "pack")
        except CeremonyError as exc:
            return _Expected(None, exc.message, "pack")
    return _Expected(None, f"no TSA chain beside it ({PACK_CHAIN}) and no workspace naming one", None)


def seal_timestamp(transcript: Path, chain_file: Path | None = None) -> SealTimestamp | None:
    """The timestamp of a sealed transcript (its seal entry verified by the caller): its token checked against the
    seal entry's hash under ``chain_file`` (``--tsa-chain``), else the chain the evidence pack it lies in carries,
    else the one its workspace names. None when there is nothing to say (no token, none expected).

    Raises:
        InputError: ``chain_file`` cannot be read or is no TSA chain.
    """
    token = seal_token_path(transcript)
    given = load_chain(chain_file) if chain_file is not None else None
    if not os.path.lexists(token):
        by = "option" if given is not None else _expected(transcript).by
        if by == "pack":
            return SealTimestamp(True, "not timestamped (no token when the evidence pack was built)")
        return SealTimestamp(True, _NOT_YET) if by is not None else None
    expected = _Expected(given, None, "option") if given is not None else _expected(transcript)
    chain = expected.chain
    if chain is None:
        return SealTimestamp(
            False, f"{token.name}: cannot be checked: {expected.why} (name the chain: --tsa-chain PEM)"
        )
    entries = read_entries(transcript)
    seal = entries[-1] if entries else {}
    try:
        message = seal_message(seal) if seal.get("event") == Event.SEAL else None
    except ValueError:
        message = None
    if message is None:
        return SealTimestamp(False, f"{token.name}: the transcript's last entry is no seal")
    check = check_token_file(token, message, chain)
    if not check.ok or check.gen_time is None:
        return SealTimestamp(False, f"{token.name}: {check.message}")
    made_at = _time(seal.get("time"))
    after = f" ({_after((check.gen_time - made_at).total_seconds(), 'the seal', check.slack)})" if made_at else ""
    return SealTimestamp(True, f"{check.message}{after}")


@dataclass(frozen=True)
class PackTimestamps:
    """The verdict on an evidence pack's tokens: ``ok``, what to print (a line each), or the first failure."""

    ok: bool
    lines: tuple[str, ...] = ()
    failure: str = ""


def check_pack_timestamps(pack: Path, manifest: str) -> PackTimestamps:
    """The tokens of an evidence pack, under the TSA chain it carries (``timestamping/tsa-chain.pem``, listed in its
    manifest): ``<manifest>.tsr`` over the manifest's bytes, each transcript's seal token over its seal entry's hash
    and each checkpoint token over its checkpoint in the pack's ``checkpoints.jsonl``. A pack with neither token nor
    chain: nothing to say. The manifest's integrity is the caller's to check first."""
    seals = sorted((pack / "transcripts").glob("*" + SEAL_TOKEN)) if (pack / "transcripts").is_dir() else []
    tokens_dir = pack / CHECKPOINT_TOKENS
    checkpoints = sorted(tokens_dir.glob("checkpoint-*.tsr")) if tokens_dir.is_dir() else []
    manifest_token = pack / f"{manifest}.tsr"
    tokens = ([manifest_token] if os.path.lexists(manifest_token) else []) + seals + checkpoints
    if not os.path.lexists(pack / PACK_CHAIN):
        if tokens:
            first = tokens[0].relative_to(pack).as_posix()
            return PackTimestamps(False, failure=f"{first}: a timestamp token, but the pack carries no TSA chain "
                                                 f"({PACK_CHAIN})")  # fmt: skip
        return PackTimestamps(True)
    try:
        chain = load_chain(pack / PACK_CHAIN, root=pack)
    except CeremonyError as exc:
        return PackTimestamps(False, failure=exc.message)
    lines = []
    if manifest_token in tokens:
        data = read_regular(pack / manifest, 64 << 20, "manifest", root=pack)
        check = check_token_file(manifest_token, data, chain, root=pack)
        if not check.ok:
            return PackTimestamps(False, failure=f"{manifest_token.name}: {check.message}")
        lines.append(f"{manifest}: {check.message}")
    else:
        lines.append(f"{manifest}: not timestamped (no {manifest_token.name}: the TSA was out of reach at the build)")
    try:
        for token in seals:
            entries = read_entries(token.with_name(token.name.removesuffix(SEAL_TOKEN) + ".jsonl"))
            seal = entries[-1] if entries and entries[-1].get("event") == Event.SEAL else None
            seal_check = check_token_file(token, seal_message(seal), chain, root=pack) if seal else None
            if seal_check is None or not seal_check.ok:
                reason = "its transcript ends in no seal" if seal_check is None else seal_check.message
                return PackTimestamps(False, failure=f"{token.relative_to(pack).as_posix()}: {reason}")
        recorded = {str(e.get("checkpoint")): e for e in read_entries(pack / CHECKPOINTS_FILE)
                    if e.get("event") == Event.JOURNAL_CHECKPOINT}  # fmt: skip
        for token in checkpoints:
            record = recorded.get(token.name.removeprefix("checkpoint-").removesuffix(".tsr"))
            stamp_check = check_token_file(token, checkpoint_message(record), chain, root=pack) if record else None
            if stamp_check is None or not stamp_check.ok:
                reason = f"no such checkpoint in {CHECKPOINTS_FILE}" if stamp_check is None else stamp_check.message
                return PackTimestamps(False, failure=f"{token.relative_to(pack).as_posix()}: {reason}")
    except (CeremonyError, ValueError) as exc:
        return PackTimestamps(False, failure=f"a timestamp token cannot be checked: {getattr(exc, 'message', exc)}")
    lines.append(f"{len(seals)} transcript seals and {len(checkpoints)} journal checkpoints timestamped by "
                 f"{chain.name}; every token verifies")  # fmt: skip
    return PackTimestamps(True, tuple(lines))
