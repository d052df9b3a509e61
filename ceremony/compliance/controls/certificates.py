"""Certificate controls (CRT): the certificate pass (signature and profile lint of every certificate) and more."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence
from ceremony.model.events import Event


# --- certificates ----------------------------------------------------------------------------
def _own(ev: Evidence) -> pd.DataFrame:
    """Certificates this workspace issued (imported ones belong to other CAs)."""
    f = ev.frames
    return f.certificates[f.certificates["issuer_ca"].astype(str).isin(set(f.cas["name"].astype(str)))]


@cache
def _profile(name: str, oids: tuple[tuple[str, str], ...]) -> Any:
    from ceremony.model.profiles import get_profile

    return get_profile(name, dict(oids))


def _verify_chunk(
    args: tuple[Sequence[tuple[str, str, bytes, str]], dict[str, bytes], tuple[tuple[str, str], ...]],
) -> Any:
    """Worker: verify each certificate's signature under its issuer, lint it, and hash its public key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ceremony.lint.certificate import check_certificate
    from ceremony.lint.findings import failing

    rows, issuers_der, oids = args
    issuers = {name: x509.load_der_x509_certificate(der) for name, der in issuers_der.items()}
    out = []
    for issuer_ca, serial, der, profile in rows:
        cert = x509.load_der_x509_certificate(der)
        issuer = issuers[issuer_ca]
        try:
            cert.verify_directly_issued_by(issuer)
            signed = ""
        except Exception as exc:  # noqa: BLE001 - any failure to verify is the finding
            signed = type(exc).__name__
        problems = failing(check_certificate(der, _profile(profile, oids), issuer=issuer))
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out.append((issuer_ca, serial, signed, [str(p) for p in problems[:3]], hashlib.sha256(spki).hexdigest()))
    return out


def certificate_pass(ev: Evidence) -> pd.DataFrame:
    """Signature, profile lint and public-key hash of every certificate this workspace issued, in worker
    processes (one pass, shared by CRT-01, CRT-07 and CRT-09)."""
    if "certificate_pass" in ev.cache:
        return ev.cache["certificate_pass"]
    import multiprocessing
    import os
    import time

    started = time.perf_counter()
    names = [str(n) for n in ev.frames.cas["name"]]
    issuers = {name: ev.ws.inventory.ca_certificate_der(name) for name in names}
    rows = ev.ws.inventory.signed_certificates(names)
    oids = tuple(sorted(ev.ws.config.oids.items()))
    size = 2000
    chunks = [(rows[i : i + size], issuers, oids) for i in range(0, len(rows), size)]
    jobs = min(len(chunks), os.cpu_count() or 1)
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.map(_verify_chunk, chunks)
    else:
        parts = [_verify_chunk(chunk) for chunk in chunks]
    frame = pd.DataFrame(
        [r for part in parts for r in part], columns=["issuer_ca", "serial", "signature_error", "lint", "spki_sha256"]
    )
    ev.cache["certificate_pass"] = frame
    ev.cache["certificate_pass_seconds"] = time.perf_counter() - started
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
