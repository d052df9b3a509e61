"""Certificate controls (CRT): the certificate pass (signature and profile lint of every certificate) and more."""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence
from ceremony.lint.findings import Finding, failing
from ceremony.lint.template import check_certificates
from ceremony.model.der import certificate_spki
from ceremony.model.events import Event
from ceremony.model.profiles import ResolvedProfile
from ceremony.record.inventory import SignedCertificate


# --- certificates ----------------------------------------------------------------------------
def _own(ev: Evidence) -> pd.DataFrame:
    """Certificates this workspace issued (imported ones belong to other CAs)."""
    f = ev.frames
    return f.certificates[f.certificates["issuer_ca"].astype(str).isin(set(f.cas["name"].astype(str)))]


@cache
def _profile(name: str, oids: tuple[tuple[str, str], ...]) -> Any:
    from ceremony.model.profiles import get_profile

    return get_profile(name, dict(oids))


#: Certificates per task of the pass: enough that each task's template lint amortises its exemplars (one full
#: lint per certificate shape), few enough that the workers stay evenly loaded.
PASS_CHUNK = (2_000, 20_000)
#: The lint codes that mean the signature was verified under the issuer and failed, and what CRT-09 says.
_SIGNATURE_FAILURES = {
    "profile.signature.invalid": "InvalidSignature",
    "profile.issuer.name_mismatch": "issuer name mismatch",
}


@dataclass(frozen=True)
class PassContext:
    """What every worker of the certificate pass reads: the rows (inherited through fork, never pickled: a task
    is a range of them), each CA's certificate, each resolved profile, and the one instant the lint uses."""

    rows: Sequence[SignedCertificate]
    issuers: Mapping[str, x509.Certificate]
    profiles: Mapping[str, ResolvedProfile]
    now: datetime


def _signature_error(findings: list[Finding]) -> str | None:
    """CRT-09's verdict from the lint's own verification under the issuer: "" verified, the failure, or None when
    the lint could not have verified it (a signature algorithm outside the profile, which the linter may not
    know, or a crashed signature check)."""
    codes = {f.code for f in findings}
    failed = [text for code, text in _SIGNATURE_FAILURES.items() if code in codes]
    if failed:
        return ", ".join(failed)
    if "profile.signature.algorithm" in codes or any(
        f.code == "profile.check_crashed" and f.message.startswith("check_signature ") for f in findings
    ):
        return None
    return ""


def _verified_directly(der: bytes, issuer: x509.Certificate) -> str:
    """cryptography's own verification, for the rare certificate the lint could not verify: "" or why not."""
    try:
        x509.load_der_x509_certificate(der).verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "InvalidSignature"
    except Exception as exc:  # noqa: BLE001 - any failure to verify is the finding
        return f"{type(exc).__name__}: {exc}"[:200]
    return ""


@dataclass(frozen=True)
class PassPart:
    """A range of the pass as a worker sends it back (small to pickle: most certificates have nothing to say)."""

    #: The SHA-256 of each certificate's SubjectPublicKeyInfo, 32 octets per certificate, in order.
    spki_sha256: bytes
    #: Offset in the range → (signature error, first three failing lint findings), for those with either.
    problems: dict[int, tuple[str, list[str]]]


def pass_range(context: PassContext, start: int, stop: int) -> PassPart:
    """The pass over ``context.rows[start:stop]``: one template lint per issuer and profile, whose verification
    under the issuer is the signature check, and each public key hashed straight from the DER."""
    rows = context.rows[start:stop]
    groups: dict[tuple[str, str], list[int]] = {}
    for n, row in enumerate(rows):
        groups.setdefault((row.issuer_ca, row.profile), []).append(n)
    problems: dict[int, tuple[str, list[str]]] = {}
    for (issuer_ca, profile), members in groups.items():
        issuer = context.issuers[issuer_ca]
        linted = check_certificates([rows[n].der for n in members], context.profiles[profile], issuer=issuer,
                                    now=context.now)  # fmt: skip
        for n, findings in zip(members, linted.findings, strict=True):
            if not findings:  # verified under the issuer and nothing else to say: most certificates
                continue
            error = _signature_error(findings)
            if error is None:
                error = _verified_directly(rows[n].der, issuer)
            lint = [str(f) for f in failing(findings)[:3]]
            if error or lint:
                problems[n] = (error, lint)
    digests = b"".join(hashlib.sha256(certificate_spki(row.der)).digest() for row in rows)
    return PassPart(digests, problems)


#: The context of this pool worker: set by ``_enter_worker``, the pool's initializer, inside each forked worker,
#: never in the process that makes the pool. As in the batch runner, it is the one module-level value written at
#: run time, because it has to be: ``Pool.imap`` sends a task's function by name, and the context (every row's
#: DER) is inherited through fork rather than pickled to each task.
_WORKER: list[PassContext] = []


def _enter_worker(context: PassContext, pool_maker: int) -> None:
    """A pool worker's initializer: keep the context given to it (inherited through fork, never pickled)."""
    if os.getpid() == pool_maker:
        raise RuntimeError("a certificate pass context is kept in forked pool workers only")
    _WORKER[:] = [context]


def _pass_in_worker(span: tuple[int, int]) -> PassPart:
    return pass_range(_WORKER[0], *span)


def certificate_pass(ev: Evidence) -> pd.DataFrame:
    """Signature, profile lint and public-key hash of every certificate this workspace issued, in worker
    processes (one pass, shared by CRT-01, CRT-07 and CRT-09): one signature verification per certificate."""
    if "certificate_pass" in ev.cache:
        return ev.cache["certificate_pass"]
    import multiprocessing
    import time

    started = time.perf_counter()
    names = [str(n) for n in ev.frames.cas["name"]]
    issuers = {name: x509.load_der_x509_certificate(ev.ws.inventory.ca_certificate_der(name)) for name in names}
    rows = ev.ws.inventory.signed_certificates(names)
    oids = tuple(sorted(ev.ws.config.oids.items()))
    profiles = {name: _profile(name, oids) for name in {row.profile for row in rows}}
    context = PassContext(rows, issuers, profiles, ev.ws.clock.now())
    jobs = os.cpu_count() or 1
    low, high = PASS_CHUNK
    size = max(low, min(high, -(-len(rows) // (4 * jobs))))
    spans = [(i, min(i + size, len(rows))) for i in range(0, len(rows), size)]
    jobs = min(len(spans), jobs)
    if jobs > 1:
        # The workers inherit the rows: frozen out of the collector first, so that a collection in a worker
        # does not touch (and so copy) every inherited page.
        gc.freeze()
        try:
            pool = multiprocessing.get_context("fork").Pool(
                jobs, initializer=_enter_worker, initargs=(context, os.getpid())
            )
        finally:
            gc.unfreeze()
        with pool:
            parts = list(pool.imap(_pass_in_worker, spans))
    else:
        parts = [pass_range(context, *span) for span in spans]
    errors = [""] * len(rows)
    lints: list[list[str]] = [[] for _ in rows]
    for (start, _), part in zip(spans, parts, strict=True):
        for n, (error, lint) in part.problems.items():
            errors[start + n], lints[start + n] = error, lint
    digests = b"".join(part.spki_sha256 for part in parts).hex()
    frame = pd.DataFrame(
        {
            "issuer_ca": [row.issuer_ca for row in rows],
            "serial": [row.serial for row in rows],
            "signature_error": errors,
            "lint": lints,
            "spki_sha256": [digests[i : i + 64] for i in range(0, len(digests), 64)],
        },
        columns=["issuer_ca", "serial", "signature_error", "lint", "spki_sha256"],
        dtype=object,  # also when there are no rows (a new workspace): text and lists, never float64
    )
    ev.cache["certificate_pass"] = frame
    ev.cache["certificate_pass_seconds"] = time.perf_counter() - started
    ev.cache["certificate_pass_jobs"] = max(jobs, 1)
    return frame


def listed(c: Checker, bad: pd.DataFrame, code: str, describe: Any, limit: int = 20) -> None:
    """One finding per bad certificate, the first ``limit`` of them, then one that counts the rest."""
    for row in bad.head(limit).itertuples():
        c.fail(f"certificate {row.issuer_ca}/{row.serial}", code, describe(row))
    if len(bad) > limit:
        c.fail("certificates", f"{code}:more", f"{len(bad) - limit} more certificates with the same problem")


def profile_conformance(ev: Evidence, c: Checker) -> None:
    done = certificate_pass(ev)
    bad = done[done["lint"].str.len() > 0]
    listed(c, bad, "lint", lambda r: "; ".join(r.lint))
    c.checked(f"{len(done)} certificates linted against their profiles")


def _ca_certificates(ev: Evidence, own: pd.DataFrame) -> pd.DataFrame:
    """Each CA's own certificate row, indexed by CA name (matched on issuer and serial)."""
    cas = ev.frames.cas
    keys = pd.DataFrame({"ca": cas["name"].astype(str), "serial": cas["serial"].astype(str),
                         "issuer_ca": cas["issuer_ca"].fillna(cas["name"]).astype(str)})  # fmt: skip
    mine = own.assign(issuer_ca=own["issuer_ca"].astype(str), serial=own["serial"].astype(str))
    return keys.merge(mine, on=["issuer_ca", "serial"]).set_index("ca")


def key_identifiers(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    ski_of = _ca_certificates(ev, own)["ski"].astype(str).to_dict()
    bad_ski = own[own["ski"].astype(str).str.len() != 16]
    listed(c, bad_ski, "ski-length", lambda r: f"SKI {r.ski} is not 8 octets")
    expected = own["issuer_ca"].astype(str).map(ski_of)
    # A self-signed root may omit its AKI (RFC 5280 4.2.1.1); every other certificate carries its issuer's SKI.
    self_signed_root = own["aki"].isna() & (own["ski"].astype(str) == expected)
    bad_aki = own[(own["aki"].astype(str) != expected) & ~self_signed_root]
    listed(c, bad_aki, "aki", lambda r: f"AKI {r.aki} is not issuer {r.issuer_ca}'s SKI {ski_of.get(str(r.issuer_ca))}")
    c.checked(f"{len(own)} certificates' key identifiers")


def serials(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    dup = own[own.duplicated(["issuer_ca", "serial"], keep=False)]
    listed(c, dup, "duplicate", lambda r: f"serial {r.serial} appears twice for {r.issuer_ca}")
    text = own["serial"].astype(str)
    odd = own[(text.str.len() != 32) | (text.str.strip("0") == "")]
    listed(c, odd, "format", lambda r: f"serial {r.serial} is not 16 octets, positive")
    good = own[(text.str.len() == 32) & (text.str.strip("0") != "")]
    raw = np.frombuffer(bytes.fromhex("".join(good["serial"].astype(str))), dtype=np.uint8).reshape(-1, 16)
    entropy = ev.policy.compliance.serial_entropy_bits
    # Leading zero octets say how much of the serial can be random (16 octets: 127 bits after the sign bit).
    width = 16 - np.argmax(raw != 0, axis=1)
    short = good[(width * 8 - 1) < entropy]
    listed(c, short, "entropy", lambda r: f"serial {r.serial} is too short for {entropy} random bits")
    low = raw[:, 8:].copy().view(">u8").ravel().astype(np.uint64)
    frame = pd.DataFrame({"ca": good["issuer_ca"].astype(str).to_numpy(), "low": low}).sort_values(["ca", "low"])
    steps = frame.groupby("ca")["low"].diff()
    runs = int((steps == 1).sum())
    if runs:
        c.fail("serials", "sequential", f"{runs} serials follow their predecessor by one: serials are not random")
    c.checked(f"{len(own)} serials: unique, 16 octets, >= {entropy} random bits, no sequential runs")


def validity(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    ends = _ca_certificates(ev, own)["not_after"].to_dict()
    issuer_end = own["issuer_ca"].astype(str).map(ends)
    device = own["profile"].astype(str).str.contains("device").to_numpy()
    late = own[(own["not_after"] > issuer_end).to_numpy() & ~device]
    listed(c, late, "outlives-issuer", lambda r: f"ends {r.not_after:%Y-%m-%d}, after its issuer {r.issuer_ca}")
    inverted = own[own["not_before"] >= own["not_after"]]
    listed(c, inverted, "inverted", lambda r: "notBefore is not before notAfter")
    c.checked(f"{len(own)} validity periods (device certificates carry the GBCS sentinel)")


def policy_oids(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    oids = tuple(sorted(ev.ws.config.oids.items()))
    wanted = {p: " ".join(_profile(p, oids).policy_oids) for p in own["profile"].astype(str).unique()}
    bad = own[own["policy_oids"].astype(str) != own["profile"].astype(str).map(wanted)]
    listed(c, bad, "policy-oid", lambda r: f"policy OIDs {r.policy_oids} are not {wanted[str(r.profile)]}")
    c.checked(f"{len(own)} certificates' policy OIDs for {len(wanted)} profiles")


def identities(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    with_id = own[own["eui64"].notna()]
    bad = with_id[~with_id["eui64"].astype(str).str.fullmatch(r"[0-9A-F]{16}")]
    listed(c, bad, "eui64", lambda r: f"EUI-64 {r.eui64} is not 8 octets of hex")
    valid = with_id[with_id["status"] == "valid"]
    keys = ["issuer_ca", "eui64", "usage", "role"]
    dup = valid[valid[keys].astype(str).duplicated(keep=False)].sort_values(keys)
    listed(c, dup, "duplicate", lambda r: f"EUI-64 {r.eui64} {r.usage} has more than one valid certificate")
    c.checked(f"{len(with_id)} identities")


def key_reuse(ev: Evidence, c: Checker) -> None:
    done = certificate_pass(ev).merge(
        _own(ev)[["issuer_ca", "serial", "usage", "profile"]].astype(str), on=["issuer_ca", "serial"]
    )
    usages = done.groupby("spki_sha256")["usage"].nunique()
    reused = done[done["spki_sha256"].isin(usages[usages > 1].index)]
    listed(c, reused, "reuse", lambda r: "its public key is also certified for another usage")
    ca_keys = set(done.loc[done["profile"].str.startswith("ss1spca"), "spki_sha256"])
    ee_ca = done[~done["profile"].str.startswith("ss1spca") & done["spki_sha256"].isin(ca_keys)]
    listed(c, ee_ca, "ca-key", lambda r: "an end-entity certificate carries a CA key")
    c.checked(f"{len(done)} public keys")


def issuance_authorised(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    allowed = {
        pid for pid, p in ev.register.people.items() if {"approver", "ra-officer", "administrator"} & set(p.roles)
    }
    unauthorised = own[~own["approved_by"].astype(str).isin(allowed)]
    listed(c, unauthorised, "approver", lambda r: f"approved by {r.approved_by}, who may not approve issuance")
    fingerprints = {
        e.get("fingerprint") for e in ev.journal if e.get("event") in (Event.CA_CREATE, Event.CERTIFICATE_ISSUE)
    }
    batches = {e.get("batch_id") for e in ev.journal if e.get("event") == Event.BATCH_START}
    covered = own["fingerprint"].astype(str).isin(fingerprints) | own["batch_id"].astype(str).isin(batches)
    listed(c, own[~covered.to_numpy()], "unlogged", lambda r: "no approved request for it in the journal")
    c.checked(f"{len(own)} certificates against {len(fingerprints)} logged issuances and {len(batches)} batches")


def chains(ev: Evidence, c: Checker) -> None:
    done = certificate_pass(ev)
    bad = done[done["signature_error"] != ""]
    listed(c, bad, "signature", lambda r: f"signature does not verify under {r.issuer_ca} ({r.signature_error})")
    c.checked(f"{len(done)} signatures verified under their issuers, in worker processes")
