"""Revocation controls (REV): CRLs timely and well formed, revocations published, revoked serials real."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

from ceremony.compliance.controls.certificates import listed
from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence


# --- revocation ------------------------------------------------------------------------------
def crls_timely(ev: Evidence, c: Checker) -> None:
    crls = ev.frames.crls.sort_values(["issuer_ca", "kind", "number"])
    now = pd.Timestamp(ev.as_of)
    ended = ev.compromised_cas
    for (ca, kind), group in crls.groupby(["issuer_ca", "kind"], observed=True):
        if str(ca) in ended:
            group = group[group["this_update"] <= pd.Timestamp(ended[str(ca)])]  # its CRLs until its revocation
            if group.empty:
                continue
        # Each CRL but the last, where the one after it came later than its nextUpdate (the mask is one
        # shorter than the group: it compares neighbours).
        late = group["this_update"].to_numpy()[1:] > group["next_update"].to_numpy()[:-1]
        gaps = group.iloc[:-1][late]
        for row in gaps.itertuples():
            c.fail(
                f"{kind} {ca}",
                f"gap:{row.number}",
                f"{str(kind).upper()} after number {row.number} came after its nextUpdate",
            )
        last = group.iloc[-1]
        if last["next_update"] < now and str(ca) not in ended:
            c.fail(
                f"{kind} {ca}",
                "stale",
                f"{ca}'s latest {str(kind).upper()} (number {last['number']}) passed its "
                f"nextUpdate {last['next_update']:%Y-%m-%d %H:%M}Z",
            )
    c.checked(f"{len(crls)} CRLs/ARLs" + (f"; {len(ended)} CA(s) revoked for a compromise publish no more"
                                          if ended else ""))  # fmt: skip


def crls_well_formed(ev: Evidence, c: Checker) -> None:
    from cryptography import x509

    limits = {
        "crl": timedelta(hours=ev.policy.revocation.crl_next_update_hours),
        "arl": timedelta(days=ev.policy.revocation.arl_next_update_days),
    }
    issuers: dict[str, Any] = {}
    for published in ev.crls:
        row, file, subject = published.row, published.file, published.subject
        if file is None:
            c.fail(subject, "missing", f"{row.artifact} is missing")
            continue
        if file.sha256 != row.sha256:
            c.fail(subject, "hash", f"{row.artifact} is not the file recorded when it was published")
        crl = file.crl
        if crl is None:
            c.fail(subject, "unreadable", f"{row.artifact} is not a DER CRL")
            continue
        ca = str(row.issuer_ca)
        if ca not in issuers:
            issuers[ca] = x509.load_der_x509_certificate(ev.ws.inventory.ca_certificate_der(ca))
        issuer = issuers[ca]
        if not file.signed_by(issuer.public_key()):
            c.fail(subject, "signature", "its signature does not verify under the CA's key")
        if crl.issuer != issuer.subject:
            c.fail(subject, "issuer", "its issuer name is not the CA's subject")
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        if number != row.number:
            c.fail(subject, "number", f"cRLNumber {number}, recorded as {row.number}")
        if crl.next_update_utc - crl.last_update_utc > limits[str(row.kind)]:
            c.fail(subject, "interval", f"nextUpdate is more than {limits[str(row.kind)]} after thisUpdate")
    numbers = ev.frames.crls.sort_values("this_update").groupby(["issuer_ca", "kind"], observed=True)["number"]
    if not numbers.apply(lambda s: s.is_monotonic_increasing and s.is_unique).all():
        c.fail("CRLs", "numbers", "cRLNumber does not strictly increase for some CA")
    c.checked(f"{len(ev.crls)} CRL files")


def revocations_published(ev: Evidence, c: Checker) -> None:
    limit = pd.Timedelta(hours=ev.policy.compliance.revocation_publication_hours)
    certs = ev.frames.certificates
    revoked = certs[certs["revoked_at"].notna()]
    if ev.since is not None:
        revoked = revoked[revoked["revoked_at"] >= pd.Timestamp(ev.since)]
    if ev.until is not None:
        revoked = revoked[revoked["revoked_at"] <= pd.Timestamp(ev.until)]
    docs = ev.crls
    if revoked.empty:
        c.checked(f"no revocations in the period; {len(docs)} CRLs")
        return
    published = pd.DataFrame(
        [(str(d.row.issuer_ca), d.row.this_update, s) for d in docs if d.file for s in d.file.serials],
        columns=["issuer_ca", "published", "serial"],
    )
    first = published.groupby(["issuer_ca", "serial"])["published"].min()
    key = pd.MultiIndex.from_arrays([revoked["issuer_ca"].astype(str), revoked["serial"].astype(str)])
    # Timestamps even when no revocation is on a CRL yet (an all-missing column is not a datetime one).
    when = pd.Series(pd.to_datetime(first.reindex(key).to_numpy(), utc=True), index=revoked.index)
    # Not on a CRL yet is late only once the publication window has passed (issue K: a revocation made an hour
    # before the assessment is not a finding).
    waiting = when.isna() & (pd.Timestamp(ev.as_of) - revoked["revoked_at"] <= limit)
    late = revoked[(when.isna() & ~waiting) | (when - revoked["revoked_at"] > limit)]
    listed(c, late, "unpublished", lambda r: f"revoked {r.revoked_at:%Y-%m-%d %H:%M}Z and on no CRL within {limit}")
    pending = f"; {int(waiting.sum())} within their window, on no CRL yet" if waiting.any() else ""
    c.checked(f"{len(revoked)} revocations against {len(docs)} CRLs{pending}")


def revoked_serials_real(ev: Evidence, c: Checker) -> None:
    certs = ev.frames.certificates
    revoked = certs.loc[certs["status"] == "revoked", ["issuer_ca", "serial"]].astype(str).assign(known=True)
    entries = pd.DataFrame(
        [(str(d.row.issuer_ca), d.subject, s) for d in ev.crls if d.file for s in d.file.serials],
        columns=["issuer_ca", "crl", "serial"],
    )
    joined = entries.merge(revoked, on=["issuer_ca", "serial"], how="left")
    for row in joined[joined["known"].isna()].head(20).itertuples():
        c.fail(row.crl, f"serial:{row.serial}", f"serial {row.serial} on the CRL is not a certificate that CA revoked")
    c.checked(f"{len(entries)} CRL entries")


#: RFC 5280 5.3.1: the reasons a compromised CA's certificate is revoked for.
_COMPROMISE_REASONS = ("keyCompromise", "cACompromise")


def ca_compromises_answered(ev: Evidence, c: Checker) -> None:
    """REV-05: each CA compromise (an incident naming a CA, or answered by a sealed ca-revocation ceremony) was
    answered on time: the CA's certificate revoked after detection, listed on its issuer's CRL/ARL after the
    revocation, the PMA notified after detection, each within the policy's hours. The times are the inventory's
    (revocation), the CRL files' own thisUpdate (publication) and the register's (detection, notification)."""
    from ceremony.compliance.sources import parse_time

    rules = ev.policy.compromise
    if rules is None:
        c.indeterminate(
            "policy parameters",
            "no-deadlines",
            "the policy parameters set no compromise deadlines (compromise.revocation_hours, arl_publication_hours)",
        )
        return
    incidents = {i.id: i for i in ev.registers["incidents"].incidents}
    # The register's word for which CA an incident compromised, else the ceremony that revoked one for it.
    compromised = {i.id: str(i.ca) for i in incidents.values() if i.ca}
    for cer in ev.all_ceremonies:
        named = cer.start.get("ceremony", {})
        if cer.type == "ca-revocation" and cer.sealed and named.get("incident") in incidents:
            compromised.setdefault(str(named["incident"]), str(named.get("ca")))

    def hours(delta: timedelta) -> str:
        return f"{delta.total_seconds() / 3600:.4g} h"

    revoke_in = timedelta(hours=rules.revocation_hours)
    publish_in = timedelta(hours=rules.arl_publication_hours)
    notify_in = timedelta(hours=ev.policy.compliance.incident_notification_hours)
    cas = ev.frames.cas.set_index(ev.frames.cas["name"].astype(str))
    certs = ev.frames.certificates
    for incident_id, ca_name in sorted(compromised.items()):
        incident = incidents[incident_id]
        detected = parse_time(incident.detected_at)
        if incident.pma_notified_at is None:
            if ev.as_of - detected > notify_in:
                c.fail(incident_id, "pma-not-notified", f"CA {ca_name}'s compromise was never notified to the PMA")
        elif parse_time(incident.pma_notified_at) - detected > notify_in:
            taken = parse_time(incident.pma_notified_at) - detected
            c.fail(incident_id, "pma-late",
                   f"the PMA heard of CA {ca_name}'s compromise after {hours(taken)} ({hours(notify_in)})")  # fmt: skip
        if ca_name not in cas.index:
            c.fail(incident_id, "unknown-ca", f"{incident_id} names CA {ca_name}, which is not in the inventory")
            continue
        ca = cas.loc[ca_name]
        issuer, serial = str(ca["issuer_ca"] or ca_name), str(ca["serial"])
        row = certs[(certs["issuer_ca"].astype(str) == issuer) & (certs["serial"].astype(str) == serial)]
        revoked = None if row.empty or pd.isna(row["revoked_at"].iloc[0]) else row["revoked_at"].iloc[0]
        if revoked is None:
            if ev.as_of - detected > revoke_in:
                c.fail(incident_id, "not-revoked",
                       f"CA {ca_name}'s certificate is not revoked, {hours(revoke_in)} after the compromise was "
                       "detected")  # fmt: skip
            continue
        revoked = revoked.to_pydatetime()
        if revoked - detected > revoke_in:
            taken = revoked - detected
            c.fail(incident_id, "revocation-late",
                   f"CA {ca_name}'s certificate was revoked {hours(taken)} after detection "
                   f"({hours(revoke_in)})")  # fmt: skip
        reason = str(row["revocation_reason"].iloc[0])
        if reason not in _COMPROMISE_REASONS:
            c.fail(incident_id, "reason", f"CA {ca_name}'s certificate was revoked as {reason}, not for a compromise")
        listed = [
            d.file.crl.last_update_utc
            for d in ev.crls
            if str(d.row.issuer_ca) == issuer and d.file is not None and d.file.crl is not None
            and serial in d.file.serials
        ]  # fmt: skip
        if not listed:
            if ev.as_of - revoked > publish_in:
                c.fail(incident_id, "arl-missing", f"no CRL/ARL of {issuer} lists CA {ca_name}'s certificate, "
                       f"{hours(publish_in)} after its revocation")  # fmt: skip
        elif min(listed) - revoked > publish_in:
            taken = min(listed) - revoked
            c.fail(incident_id, "arl-late", f"{issuer}'s first CRL/ARL listing CA {ca_name} came {hours(taken)} "
                   f"after its revocation ({hours(publish_in)})")  # fmt: skip
    c.checked(
        f"{len(compromised)} CA compromises: revoked within {hours(revoke_in)} of detection, on the issuer's ARL "
        f"within {hours(publish_in)}, the PMA notified within {hours(notify_in)}"
    )
