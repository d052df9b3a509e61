"""One check per control of the S1SPKM catalogue (``data/controls/s1spkm.yaml``).

Each check reads the evidence (``ceremony.checks.sources.Evidence``) and reports failures and
undecidable points through its ``Checker``; a check with nothing to report passes with a summary of
what it examined. Inventory checks work on whole frames (no per-certificate Python loops); the
signature and profile checks of every certificate run in worker processes (``certificate_pass``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from ceremony.checks.assessment import Checker, check
from ceremony.checks.sources import CeremonyRecord, Evidence, parse_time
from ceremony.errors import CeremonyError

OPERATIONAL = {"administrator", "operator", "custodian", "ra-officer", "approver"}
SEAT_ROLES = {
    "administrator": ("administrator",),
    "operators": ("operator",),
    "custodians": ("custodian",),
    "witnesses": ("witness", "auditor"),
}


def _seated(c: CeremonyRecord) -> list[tuple[str, str]]:
    """(seat, person) for everyone seated at a ceremony."""
    seats = c.seats
    out = [("administrator", seats["administrator"])] if seats.get("administrator") else []
    return out + [(seat, pid) for seat in ("operators", "custodians", "witnesses") for pid in seats.get(seat, [])]


def _person_key(ev: Evidence, pid: str) -> tuple[str, str]:
    """Who a register id is: the same name and organisation under two ids is one person."""
    person = ev.register.people.get(pid)
    return (person.name.casefold(), person.organisation.casefold()) if person else (pid, "?")


# --- governance ------------------------------------------------------------------------------
@check("GOV-01")
def documents_approved(ev: Evidence, c: Checker) -> None:
    docs = [d for d in ev.registers["documents"].documents if d.status == "in-force"]
    for kind in ("CP",):
        if not any(d.kind == kind for d in docs):
            c.fail("document register", f"no-{kind}", f"no {kind} is in force")
    if not any(d.kind in ("CPS", "KMPS") for d in docs):
        c.fail("document register", "no-CPS", "no CPS or key management practice statement is in force")
    in_force = {f"{d.id} {d.version}" for d in docs}
    for d in docs:
        subject = f"{d.id} {d.version}"
        if d.pma_approval is None:
            c.fail(subject, "unapproved", f"{d.kind} {subject} is in force with no PMA approval on record")
        if date.fromisoformat(d.next_review) < ev.as_of.date():
            c.fail(subject, "review-overdue", f"{d.kind} {subject} was due for review on {d.next_review}")
        if d.kind in ("CPS", "KMPS") and d.implements not in in_force:
            c.fail(
                subject,
                "implements",
                f"{d.kind} {subject} implements {d.implements or 'nothing named'}, which is not a CP in force",
            )
    c.checked(f"{len(docs)} documents in force")


@check("GOV-02")
def assessment_cadence(ev: Evidence, c: Checker) -> None:
    done = ev.registers["assessments"].assessments
    kinds = {a.type for a in done}
    for stage in ("initial-stage-1", "initial-stage-2"):
        if stage not in kinds:
            c.fail("assessment register", f"missing-{stage}", f"no {stage.replace('-', ' ')} assessment on record")
    dated = [date.fromisoformat(a.date) for a in done if a.type in ("initial-stage-2", "annual")]
    months = ev.policy.compliance.annual_assessment_months
    if dated and (ev.as_of.date() - max(dated)).days > months * 31:
        c.fail(
            "assessment register",
            "annual-overdue",
            f"the last Initial Stage 2 or Annual assessment was on {max(dated)}; one is due every {months} months",
        )
    for a in done:
        staff = [
            pid
            for pid, p in ev.register.people.items()
            if p.name.casefold() == a.assessor.casefold() and set(p.roles) & OPERATIONAL
        ]
        if staff:
            c.fail(a.id, "assessor-operational", f"assessor {a.assessor} holds an operational role ({staff[0]})")
    c.checked(f"{len(done)} assessments; independence beyond the register needs the PMA's judgement")


@check("GOV-03")
def findings_remediated(ev: Evidence, c: Checker) -> None:
    for a in ev.registers["assessments"].assessments:
        if a.outcome == "approved with caveats" and not a.remediation_plan:
            c.fail(a.id, "no-plan", f"{a.id} was approved with caveats and has no remediation plan")
        for f in a.findings:
            if f.status == "open" and date.fromisoformat(f.due) < ev.as_of.date():
                c.fail(f.id, "overdue", f"assessment finding {f.id} ({f.summary}) is open past its due date {f.due}")
    c.checked("every assessment finding's status and due date")


@check("GOV-04")
def incidents_notified(ev: Evidence, c: Checker) -> None:
    limit = timedelta(hours=ev.policy.compliance.incident_notification_hours)
    serious = [i for i in ev.registers["incidents"].incidents if i.kind in ("key-compromise", "suspected-compromise")]
    for i in serious:
        detected = parse_time(i.detected_at)
        if i.pma_notified_at is None:
            c.fail(i.id, "not-notified", f"{i.kind} {i.id} was never notified to the PMA")
        elif parse_time(i.pma_notified_at) - detected > limit:
            c.fail(
                i.id, "late", f"{i.id} reached the PMA after {parse_time(i.pma_notified_at) - detected} (limit {limit})"
            )
        if i.recovery_key_used_at and (
            i.recovery_decision_at is None or parse_time(i.recovery_decision_at) > parse_time(i.recovery_key_used_at)
        ):
            c.fail(i.id, "no-decision", f"{i.id}: a recovery key was used before the PMA's recovery decision")
    c.checked(f"{len(serious)} compromise incidents")


# --- ceremonies ------------------------------------------------------------------------------
@check("CER-01")
def scripts_approved(ev: Evidence, c: Checker) -> None:
    needed = ev.policy.ceremony.approvals_required
    for cer in ev.ceremonies:
        start, begun = cer.start, cer.started
        sha = start.get("file_sha256")
        approvers = {
            e["by"]
            for e in ev.journal
            if e.get("event") == "ceremony.approve"
            and e.get("sha256") == sha
            and begun is not None
            and parse_time(e["time"]) < begun
        }
        if len(approvers) < needed:
            c.fail(
                f"ceremony {cer.ceremony_id}",
                "unapproved",
                f"{start.get('file')} (sha256 {str(sha)[:16]}…) had {len(approvers)} of {needed} approvals "
                "before the ceremony began",
                str(cer.path.name),
            )
    c.checked(f"{len(ev.ceremonies)} ceremonies' file approvals in the journal")


@check("CER-02")
def transcripts_intact(ev: Evidence, c: Checker) -> None:
    recorded = {r[0]: r[1] for r in ev.db("SELECT ceremony_id, transcript_sha256 FROM ceremonies")}
    for cer in ev.ceremonies:
        subject = f"ceremony {cer.ceremony_id}"
        if not cer.report.ok:
            c.fail(subject, "broken", f"{cer.path.name}: {cer.report.message}", cer.path.name)
            continue
        digest = hashlib.sha256(cer.path.read_bytes()).hexdigest()
        if recorded.get(cer.ceremony_id) not in (None, digest):
            c.fail(
                subject,
                "differs",
                f"{cer.path.name} is not the transcript the inventory recorded when it was sealed",
                cer.path.name,
            )
    c.checked(f"{len(ev.ceremonies)} transcripts: chain, seal and recorded hash")


@check("CER-03")
def transcripts_attested(ev: Evidence, c: Checker) -> None:
    for cer in ev.ceremonies:
        if not cer.sealed:
            continue
        status = ev.attestations(cer)
        if status.missing:
            c.fail(
                f"ceremony {cer.ceremony_id}",
                "missing",
                f"no attestation yet by {', '.join(status.missing)}",
                cer.path.name,
            )
        if status.invalid:
            c.fail(
                f"ceremony {cer.ceremony_id}",
                "invalid",
                f"attestations that do not hold: {', '.join(status.invalid)}",
                cer.path.name,
            )
    c.checked(f"attestations of {len(ev.ceremonies)} transcripts")


@check("CER-04")
def witnessed(ev: Evidence, c: Checker) -> None:
    needed = ev.policy.ceremony.witnesses_min
    for cer in ev.ceremonies:
        witnesses = cer.seats.get("witnesses", [])
        others = {pid for seat, pid in _seated(cer) if seat != "witnesses"}
        if len(witnesses) < needed:
            c.fail(f"ceremony {cer.ceremony_id}", "too-few", f"{len(witnesses)} witness(es); {needed} needed")
        for pid in sorted(set(witnesses) & others):
            c.fail(f"ceremony {cer.ceremony_id}", f"witness-seated:{pid}", f"witness {pid} also holds another seat")
    c.checked(f"{len(ev.ceremonies)} ceremonies' witnesses")


def _quorum_sizes(ev: Evidence) -> dict[str, int]:
    """m of each split on record, by purpose (e.g. ``s1sp-ca-token.user-pin``)."""
    return {str(s["purpose"]): int(s["m"]) for cer in ev.all_ceremonies for s in cer.splits() if "purpose" in s}


@check("CER-05")
def quorum_honoured(ev: Evidence, c: Checker) -> None:
    sizes, floor = _quorum_sizes(ev), ev.policy.ceremony.min_quorum_m
    uses = 0
    for cer in ev.ceremonies:
        for split in cer.splits():
            if int(split["m"]) < floor:
                c.fail(
                    f"ceremony {cer.ceremony_id}",
                    f"m-below-policy:{split.get('purpose')}",
                    f"{split.get('purpose')} split {split['m']}-of-{split['n']}; policy minimum m is {floor}",
                )
        for entry in cer.entries:
            details = entry.get("details") or {}
            if entry.get("event") != "step" or "shares_presented" not in details:
                continue
            uses += 1
            purpose = f"{details['token']}.user-pin" if "token" in details else str(details.get("purpose", ""))
            if not purpose and cer.type == "key-restore":  # the backup key's shares, split at backup
                purpose = f"{cer.start.get('ceremony', {}).get('key_label')}.kek"
            m = sizes.get(purpose)
            people = {_person_key(ev, pid) for pid in details["shares_presented"]}
            if m is None:
                c.indeterminate(
                    f"ceremony {cer.ceremony_id}",
                    f"unknown-split:{purpose}",
                    f"{entry.get('step')}: no split of {purpose or 'this secret'} is on record",
                )
            elif len(people) < m:
                c.fail(
                    f"ceremony {cer.ceremony_id}",
                    f"short:{entry.get('step')}",
                    f"{entry.get('step')}: {len(people)} distinct custodians presented shares; {m} needed",
                )
    c.checked(f"{uses} activations and rebuilds against their m-of-n")


@check("CER-06")
def custodians_distinct(ev: Evidence, c: Checker) -> None:
    need = ev.policy.ceremony.custodian_organisations_min
    splits = 0
    for cer in ev.ceremonies:
        for split in cer.splits():
            splits += 1
            holders = list(split["shares"])
            people: dict[tuple[str, str], list[str]] = {}
            for pid in holders:
                people.setdefault(_person_key(ev, pid), []).append(pid)
            for ids in people.values():
                if len(ids) > 1:
                    c.fail(
                        f"ceremony {cer.ceremony_id}",
                        f"two-shares:{split.get('purpose')}",
                        f"{' and '.join(ids)} are one person, holding {len(ids)} shares of {split.get('purpose')}",
                    )
            orgs = {key[1] for key in people}
            if len(orgs) < need:
                c.fail(
                    f"ceremony {cer.ceremony_id}",
                    f"one-organisation:{split.get('purpose')}",
                    f"custodians of {split.get('purpose')} come from {len(orgs)} organisation(s); {need} needed",
                )
    rows = ev.db("SELECT key_label, custodian FROM key_custody")
    by_key: dict[str, Counter[tuple[str, str]]] = {}
    for label, custodian in rows:
        by_key.setdefault(label, Counter())[_person_key(ev, custodian)] += 1
    for label, counts in by_key.items():
        if any(n > 1 for n in counts.values()):
            c.fail(f"key {label}", "two-components", f"one person holds two components of {label}")
    c.checked(f"{splits} splits and {len(by_key)} component sets")


@check("CER-07")
def deviations_acknowledged(ev: Evidence, c: Checker) -> None:
    count = 0
    for cer in ev.ceremonies:
        seated = {pid for _, pid in _seated(cer)}
        for e in cer.entries:
            if e.get("event") != "deviation":
                continue
            count += 1
            acked = set(e.get("acknowledged_by") or [])
            if not e.get("what") or not e.get("why") or not acked or not acked <= seated:
                c.fail(
                    f"ceremony {cer.ceremony_id}",
                    f"deviation:{e.get('seq')}",
                    f"deviation at entry {e.get('seq')} lacks a description, a reason or a seated acknowledger",
                )
    c.checked(f"{count} deviations")


@check("CER-08")
def recorded(ev: Evidence, c: Checker) -> None:
    for cer in ev.ceremonies:
        recording = cer.start.get("ceremony", {}).get("recording") or {}
        if not recording.get("video_id"):
            c.fail(f"ceremony {cer.ceremony_id}", "no-recording", "the ceremony names no recording")
        elif not recording.get("sha256"):
            c.indeterminate(
                f"ceremony {cer.ceremony_id}",
                "unhashed",
                f"recording {recording['video_id']} is named, but its hash and time span are not in "
                "the transcript; check the archive copy by hand",
            )
    c.checked(f"{len(ev.ceremonies)} ceremonies' recordings")


@check("CER-09")
def ca_certificate_as_named(ev: Evidence, c: Checker) -> None:
    cas = ev.frames.cas.set_index("name")
    for cer in ev.ceremonies:
        if cer.type not in ("root-ca", "issuing-ca"):
            continue
        spec = cer.start.get("ceremony", {})
        issued = cer.steps("certificate.issue")
        name = spec.get("ca")
        if not issued or name not in cas.index:
            c.fail(f"ceremony {cer.ceremony_id}", "no-certificate", f"no certificate for CA {name} on record")
            continue
        details = issued[-1]["details"]
        row = ev.db(
            "SELECT fingerprint, subject FROM certificates WHERE issuer_ca = ? AND serial = ?",
            (cas.loc[name, "issuer_ca"] if pd.notna(cas.loc[name, "issuer_ca"]) else name, cas.loc[name, "serial"]),
        )
        if not row or row[0][0] != details.get("fingerprint"):
            c.fail(
                f"CA {name}",
                "differs",
                f"the inventory's certificate for {name} is not the one ceremony {cer.ceremony_id} issued",
            )
        if f"CN={spec.get('naming', {}).get('common_name')}" not in str(details.get("subject")):
            c.fail(f"CA {name}", "name", f"subject {details.get('subject')} does not carry the naming document's CN")
        checks = (cer.steps("naming.check") or [{}])[-1].get("details", {}).get("checks", {})
        if not checks or not all(checks.values()):
            c.fail(f"CA {name}", "naming-check", f"the naming check in {cer.ceremony_id} did not pass: {checks}")
    c.checked("CA ceremonies' certificates against their naming documents")


# --- keys ------------------------------------------------------------------------------------
def _generation_steps(ev: Evidence) -> dict[str, dict[str, Any]]:
    return {s["details"]["key_label"]: s["details"] for cer in ev.all_ceremonies for s in cer.steps("key.generate")}


@check("KEY-01")
def keys_in_hsm(ev: Evidence, c: Checker) -> None:
    f, min_level = ev.frames, ev.policy.compliance.hsm_min_fips_level
    hsms = {label: h for h in ev.registers["hsms"].hsms for label in h.token_labels}
    generated = _generation_steps(ev)
    tokens = set()
    for ca in f.cas.itertuples():
        if ca.key_store != "pkcs11":
            c.fail(f"CA {ca.name}", "software-key", f"CA {ca.name}'s key is in the software key store, not an HSM")
            continue
        token = ev.ws.token_label or "?"
        tokens.add(token)
        step = generated.get(ca.key_label)
        try:  # the attributes as the token holds them now, not as a transcript once recorded them
            attrs = ev.ws.key_store.attributes(ca.key_label).record()
        except CeremonyError as exc:
            c.indeterminate(
                f"CA {ca.name}",
                "token-unreadable",
                f"{ca.key_label}'s attributes could not be read from token {token}: {exc.message}",
            )
            continue
        for flag in ("LOCAL", "SENSITIVE", "ALWAYS_SENSITIVE"):
            if not attrs.get(flag):
                c.fail(f"CA {ca.name}", f"attribute:{flag}", f"{ca.key_label} on {token} is not {flag}")
        if attrs.get("EXTRACTABLE") and not (step or {}).get("backup_allowed"):
            c.fail(
                f"CA {ca.name}",
                "extractable",
                f"{ca.key_label} is EXTRACTABLE though no generation ceremony declared a backup",
            )
    for token in sorted(tokens):
        hsm = hsms.get(token)
        if hsm is None:
            c.fail(f"token {token}", "not-on-inventory", f"token {token} is not on the HSM inventory")
        elif hsm.fips_level < min_level:
            c.fail(
                f"token {token}",
                "fips-level",
                f"token {token} is on {hsm.model} (FIPS level {hsm.fips_level or 'none'}"
                f"); policy needs level {min_level}",
            )
    c.checked(f"{len(f.cas)} CA keys and {len(tokens)} token(s)")


def _windows(ev: Evidence) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    return [(pd.Timestamp(x.started), pd.Timestamp(x.ended)) for x in ev.all_ceremonies if x.started and x.ended]


@check("KEY-02")
def root_in_ceremonies(ev: Evidence, c: Checker) -> None:
    f = ev.frames
    roots = set(f.cas.loc[f.cas["role"] == "root", "name"].astype(str))
    windows = _windows(ev)

    def outside(times: pd.Series) -> pd.Series:
        inside = pd.Series(False, index=times.index)
        for lo, hi in windows:
            inside |= (times >= lo - pd.Timedelta(seconds=1)) & (times <= hi + pd.Timedelta(seconds=1))
        return ~inside

    certs = f.certificates[f.certificates["issuer_ca"].astype(str).isin(roots)]
    for serial in certs.loc[outside(certs["issued_at"]).to_numpy(), "serial"].astype(str):
        c.fail(f"certificate {serial}", "outside", f"root-signed certificate {serial} was issued outside any ceremony")
    crls = f.crls[f.crls["issuer_ca"].astype(str).isin(roots)]
    for row in crls[outside(crls["this_update"]).to_numpy()].itertuples():
        c.fail(
            f"{row.kind} {row.issuer_ca} #{row.number}",
            "outside",
            f"{str(row.kind).upper()} {row.number} of {row.issuer_ca} was signed outside any ceremony",
        )
    c.checked(f"{len(certs)} certificates and {len(crls)} CRLs signed by root CAs")


@check("KEY-03")
def key_inventory_complete(ev: Evidence, c: Checker) -> None:
    f = ev.frames
    keys = f.asymmetric_keys
    active = keys[keys["state"] == "active"]
    for row in f.cas.itertuples():
        if row.key_label not in set(active["label"].astype(str)):
            c.fail(f"CA {row.name}", "no-key", f"CA {row.name}'s key {row.key_label} is not in the key inventory")
    ca_labels = set(f.cas["key_label"].astype(str))
    for k in active[(active["purpose"] == "ca") & ~active["label"].astype(str).isin(ca_labels)].itertuples():
        c.fail(f"key {k.token}/{k.label}", "orphan", f"key {k.label} on {k.token} belongs to no CA")
    try:
        objects = ev.token_objects
    except Exception as exc:  # noqa: BLE001 - the token may not open here: say so
        c.indeterminate("token", "unreadable", f"the token's objects could not be listed ({type(exc).__name__})")
        return
    for token, labels in objects.items():
        known = set(active.loc[active["token"].astype(str) == token, "label"].astype(str))
        for label in sorted(set(labels) - known):
            c.fail(
                f"key {token}/{label}",
                "unknown-object",
                f"private key {label!r} on token {token} is not in the key inventory",
            )
    c.checked(f"{len(f.cas)} CAs, {len(active)} active key pairs, {sum(map(len, objects.values()))} token objects")


@check("KEY-04")
def backups(ev: Evidence, c: Checker) -> None:
    f = ev.frames
    sealed = {x.ceremony_id: x for x in ev.all_ceremonies if x.sealed}
    backed_up = {x.start["ceremony"].get("key_label") for x in sealed.values() if x.type == "key-backup"}
    for row in f.cas[f.cas["role"] == "root"].itertuples():
        if row.key_label not in backed_up:
            c.fail(f"CA {row.name}", "no-backup", f"root CA {row.name}'s key has no backup ceremony on record")
    restored = f.asymmetric_keys[f.asymmetric_keys["origin"] == "unwrapped"]
    for k in restored.itertuples():
        cer = sealed.get(str(k.ceremony_id)) if pd.notna(k.ceremony_id) else None
        if cer is None or cer.type != "key-restore":
            c.fail(
                f"key {k.token}/{k.label}",
                "restore-unrecorded",
                f"key {k.label} on {k.token} was restored from a backup with no sealed restore ceremony on record",
            )
    c.checked(f"{len(backed_up)} backed-up keys, {len(restored)} restored copies")


@check("KEY-05")
def activation_data(ev: Evidence, c: Checker) -> None:
    initialised = set()
    for cer in ev.all_ceremonies:
        if cer.type in ("token-init", "key-restore") and cer.sealed:
            initialised.add(cer.start.get("ceremony", {}).get("token", {}).get("label"))
    used = 0
    for cer in ev.ceremonies:
        for step in cer.steps("token.activate"):
            used += 1
            token = step["details"].get("token")
            if token not in initialised:
                c.fail(
                    f"token {token}",
                    "uninitialised",
                    f"token {token} was used in {cer.ceremony_id} but no token-initialisation ceremony is on record",
                )
    for label, component, sealed_bag, unsealed in ev.db(
        "SELECT key_label, component, bag_sealed, bag_unsealed FROM key_custody"
    ):
        if sealed_bag and unsealed and sealed_bag != unsealed:
            c.fail(
                f"key {label}",
                f"bag:{component}",
                f"component {component} of {label} was sealed in bag {sealed_bag} but unsealed from {unsealed}",
            )
    c.checked(f"{used} token activations, component bags")


@check("KEY-06")
def components(ev: Evidence, c: Checker) -> None:
    keys = ev.frames.symmetric_keys
    built = keys[keys["origin"] == "components"]
    rows = ev.db("SELECT key_label, custodian, kcv FROM key_custody")
    for label in built["label"].astype(str):
        mine = [r for r in rows if r[0] == label]
        if len(mine) < 2 or len({r[1] for r in mine}) < len(mine):
            c.fail(
                f"key {label}",
                "components",
                f"{label} has {len(mine)} components from {len({r[1] for r in mine})} custodians",
            )
        if any(not r[2] for r in mine):
            c.fail(f"key {label}", "kcv", f"a component of {label} has no KCV on record")
    c.checked(f"{len(built)} keys built from components")


@check("KEY-07")
def rotation(ev: Evidence, c: Checker) -> None:
    keys = ev.frames.symmetric_keys
    now = pd.Timestamp(ev.as_of)
    active = keys[keys["state"] == "active"]
    for k in active[active["expires_at"] <= now].itertuples():
        c.fail(f"key {k.label}", "expired", f"{k.label} is active past its crypto-period ({k.expires_at:%Y-%m-%d})")
    for k in active[active["rotation_due"] <= now].itertuples():
        c.fail(f"key {k.label}", "rotation-due", f"{k.label} was due for rotation on {k.rotation_due:%Y-%m-%d}")
    rotations = {x.ceremony_id for x in ev.all_ceremonies if x.type == "key-rotation" and x.sealed}
    for k in keys[keys["predecessor"].notna()].itertuples():
        if str(k.ceremony_id) not in rotations:
            c.fail(f"key {k.label}", "unrecorded", f"{k.label} succeeded {k.predecessor} with no rotation ceremony")
    c.checked(f"{len(active)} active symmetric keys")


@check("KEY-08")
def destruction(ev: Evidence, c: Checker) -> None:
    sealed = {x.ceremony_id for x in ev.all_ceremonies if x.type == "key-destruction" and x.sealed}
    events = [e for e in ev.journal if e.get("event") == "key.destroyed" and not e.get("rehearsal")]
    for e in events:
        if e.get("ceremony_id") not in sealed:
            c.fail(
                f"key {e.get('token_label')}/{e.get('key_label')}",
                "unwitnessed",
                f"{e.get('key_label')} was destroyed outside a sealed destruction ceremony",
            )
    f = ev.frames
    keys = f.asymmetric_keys
    for k in keys[keys["state"] == "destroyed"].itertuples():
        if ((keys["label"] == k.label) & (keys["state"] == "active")).any():
            continue  # another copy lives on (the original of a destroyed test copy)
        cas = f.cas.loc[f.cas["key_label"] == k.label, "name"].astype(str)
        later = f.certificates[
            f.certificates["issuer_ca"].astype(str).isin(set(cas)) & (f.certificates["issued_at"] > k.destroyed_at)
        ]
        if len(later):
            c.fail(
                f"key {k.token}/{k.label}",
                "used-after",
                f"{len(later)} certificates signed after {k.label} was destroyed",
            )
    c.checked(f"{len(events)} destructions")


# --- certificates ----------------------------------------------------------------------------
def _own(ev: Evidence) -> pd.DataFrame:
    """Certificates this workspace issued (imported ones belong to other CAs)."""
    f = ev.frames
    return f.certificates[f.certificates["issuer_ca"].astype(str).isin(set(f.cas["name"].astype(str)))]


@cache
def _profile(name: str, oids: tuple[tuple[str, str], ...]) -> Any:
    from ceremony.profiles import get_profile

    return get_profile(name, dict(oids))


def _verify_chunk(args: tuple[list[tuple[str, str, bytes, str]], dict[str, bytes], tuple[tuple[str, str], ...]]) -> Any:
    """Worker: verify each certificate's signature under its issuer, lint it, and hash its public key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ceremony.checks.certificate import check_certificate
    from ceremony.checks.findings import failing

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
    marks = ", ".join("?" for _ in names)
    sql = f"SELECT issuer_ca, serial, der, profile FROM certificates WHERE issuer_ca IN ({marks})"  # noqa: S608
    rows = [(r[0], r[1], bytes(r[2]), r[3]) for r in ev.db(sql, tuple(names))] if names else []
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


def _listed(c: Checker, bad: pd.DataFrame, code: str, describe: Any, limit: int = 20) -> None:
    """One finding per bad certificate, the first ``limit`` of them, then one that counts the rest."""
    for row in bad.head(limit).itertuples():
        c.fail(f"certificate {row.issuer_ca}/{row.serial}", code, describe(row))
    if len(bad) > limit:
        c.fail("certificates", f"{code}:more", f"{len(bad) - limit} more certificates with the same problem")


@check("CRT-01")
def profile_conformance(ev: Evidence, c: Checker) -> None:
    done = certificate_pass(ev)
    bad = done[done["lint"].str.len() > 0]
    _listed(c, bad, "lint", lambda r: "; ".join(r.lint))
    c.checked(f"{len(done)} certificates linted against their profiles")


def _ca_certificates(ev: Evidence, own: pd.DataFrame) -> pd.DataFrame:
    """Each CA's own certificate row, indexed by CA name (matched on issuer and serial)."""
    cas = ev.frames.cas
    keys = pd.DataFrame({"ca": cas["name"].astype(str), "serial": cas["serial"].astype(str),
                         "issuer_ca": cas["issuer_ca"].fillna(cas["name"]).astype(str)})  # fmt: skip
    mine = own.assign(issuer_ca=own["issuer_ca"].astype(str), serial=own["serial"].astype(str))
    return keys.merge(mine, on=["issuer_ca", "serial"]).set_index("ca")


@check("CRT-02")
def key_identifiers(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    ski_of = _ca_certificates(ev, own)["ski"].astype(str).to_dict()
    bad_ski = own[own["ski"].astype(str).str.len() != 16]
    _listed(c, bad_ski, "ski-length", lambda r: f"SKI {r.ski} is not 8 octets")
    expected = own["issuer_ca"].astype(str).map(ski_of)
    # A self-signed root may omit its AKI (RFC 5280 4.2.1.1); every other certificate carries its issuer's SKI.
    self_signed_root = own["aki"].isna() & (own["ski"].astype(str) == expected)
    bad_aki = own[(own["aki"].astype(str) != expected) & ~self_signed_root]
    _listed(
        c, bad_aki, "aki", lambda r: f"AKI {r.aki} is not issuer {r.issuer_ca}'s SKI {ski_of.get(str(r.issuer_ca))}"
    )
    c.checked(f"{len(own)} certificates' key identifiers")


@check("CRT-03")
def serials(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    dup = own[own.duplicated(["issuer_ca", "serial"], keep=False)]
    _listed(c, dup, "duplicate", lambda r: f"serial {r.serial} appears twice for {r.issuer_ca}")
    text = own["serial"].astype(str)
    odd = own[(text.str.len() != 32) | (text.str.strip("0") == "")]
    _listed(c, odd, "format", lambda r: f"serial {r.serial} is not 16 octets, positive")
    good = own[(text.str.len() == 32) & (text.str.strip("0") != "")]
    raw = np.frombuffer(bytes.fromhex("".join(good["serial"].astype(str))), dtype=np.uint8).reshape(-1, 16)
    entropy = ev.policy.compliance.serial_entropy_bits
    # Leading zero octets say how much of the serial can be random (16 octets: 127 bits after the sign bit).
    width = 16 - np.argmax(raw != 0, axis=1)
    short = good[(width * 8 - 1) < entropy]
    _listed(c, short, "entropy", lambda r: f"serial {r.serial} is too short for {entropy} random bits")
    low = raw[:, 8:].copy().view(">u8").ravel().astype(np.uint64)
    frame = pd.DataFrame({"ca": good["issuer_ca"].astype(str).to_numpy(), "low": low}).sort_values(["ca", "low"])
    steps = frame.groupby("ca")["low"].diff()
    runs = int((steps == 1).sum())
    if runs:
        c.fail("serials", "sequential", f"{runs} serials follow their predecessor by one: serials are not random")
    c.checked(f"{len(own)} serials: unique, 16 octets, >= {entropy} random bits, no sequential runs")


@check("CRT-04")
def validity(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    ends = _ca_certificates(ev, own)["not_after"].to_dict()
    issuer_end = own["issuer_ca"].astype(str).map(ends)
    device = own["profile"].astype(str).str.contains("device").to_numpy()
    late = own[(own["not_after"] > issuer_end).to_numpy() & ~device]
    _listed(c, late, "outlives-issuer", lambda r: f"ends {r.not_after:%Y-%m-%d}, after its issuer {r.issuer_ca}")
    inverted = own[own["not_before"] >= own["not_after"]]
    _listed(c, inverted, "inverted", lambda r: "notBefore is not before notAfter")
    c.checked(f"{len(own)} validity periods (device certificates carry the GBCS sentinel)")


@check("CRT-05")
def policy_oids(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    oids = tuple(sorted(ev.ws.config.oids.items()))
    wanted = {p: " ".join(_profile(p, oids).policy_oids) for p in own["profile"].astype(str).unique()}
    bad = own[own["policy_oids"].astype(str) != own["profile"].astype(str).map(wanted)]
    _listed(c, bad, "policy-oid", lambda r: f"policy OIDs {r.policy_oids} are not {wanted[str(r.profile)]}")
    c.checked(f"{len(own)} certificates' policy OIDs for {len(wanted)} profiles")


@check("CRT-06")
def identities(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    with_id = own[own["eui64"].notna()]
    bad = with_id[~with_id["eui64"].astype(str).str.fullmatch(r"[0-9A-F]{16}")]
    _listed(c, bad, "eui64", lambda r: f"EUI-64 {r.eui64} is not 8 octets of hex")
    valid = with_id[with_id["status"] == "valid"]
    keys = ["issuer_ca", "eui64", "usage", "role"]
    dup = valid[valid[keys].astype(str).duplicated(keep=False)].sort_values(keys)
    _listed(c, dup, "duplicate", lambda r: f"EUI-64 {r.eui64} {r.usage} has more than one valid certificate")
    c.checked(f"{len(with_id)} identities")


@check("CRT-07")
def key_reuse(ev: Evidence, c: Checker) -> None:
    done = certificate_pass(ev).merge(
        _own(ev)[["issuer_ca", "serial", "usage", "profile"]].astype(str), on=["issuer_ca", "serial"]
    )
    usages = done.groupby("spki_sha256")["usage"].nunique()
    reused = done[done["spki_sha256"].isin(usages[usages > 1].index)]
    _listed(c, reused, "reuse", lambda r: "its public key is also certified for another usage")
    ca_keys = set(done.loc[done["profile"].str.startswith("ss1spca"), "spki_sha256"])
    ee_ca = done[~done["profile"].str.startswith("ss1spca") & done["spki_sha256"].isin(ca_keys)]
    _listed(c, ee_ca, "ca-key", lambda r: "an end-entity certificate carries a CA key")
    c.checked(f"{len(done)} public keys")


@check("CRT-08")
def issuance_authorised(ev: Evidence, c: Checker) -> None:
    own = _own(ev)
    allowed = {
        pid for pid, p in ev.register.people.items() if {"approver", "ra-officer", "administrator"} & set(p.roles)
    }
    unauthorised = own[~own["approved_by"].astype(str).isin(allowed)]
    _listed(c, unauthorised, "approver", lambda r: f"approved by {r.approved_by}, who may not approve issuance")
    fingerprints = {e.get("fingerprint") for e in ev.journal if e.get("event") in ("ca.create", "certificate.issue")}
    batches = {e.get("batch_id") for e in ev.journal if e.get("event") == "batch.start"}
    covered = own["fingerprint"].astype(str).isin(fingerprints) | own["batch_id"].astype(str).isin(batches)
    _listed(c, own[~covered.to_numpy()], "unlogged", lambda r: "no approved request for it in the journal")
    c.checked(f"{len(own)} certificates against {len(fingerprints)} logged issuances and {len(batches)} batches")


@check("CRT-09")
def chains(ev: Evidence, c: Checker) -> None:
    done = certificate_pass(ev)
    bad = done[done["signature_error"] != ""]
    _listed(c, bad, "signature", lambda r: f"signature does not verify under {r.issuer_ca} ({r.signature_error})")
    c.checked(f"{len(done)} signatures verified under their issuers, in worker processes")


# --- revocation ------------------------------------------------------------------------------
def _crl_documents(ev: Evidence) -> list[dict[str, Any]]:
    if "crls" not in ev.cache:
        from cryptography import x509

        docs = []
        for row in ev.frames.crls.itertuples():
            path = ev.ws.root / str(row.artifact)
            data = path.read_bytes() if path.is_file() else b""
            crl = x509.load_der_x509_crl(data) if data else None
            docs.append(
                {
                    "row": row,
                    "data": data,
                    "crl": crl,
                    "serials": {f"{r.serial_number:032X}" for r in crl} if crl is not None else set(),
                }
            )
        ev.cache["crls"] = docs
    return ev.cache["crls"]  # type: ignore[no-any-return]


@check("REV-01")
def crls_timely(ev: Evidence, c: Checker) -> None:
    crls = ev.frames.crls.sort_values(["issuer_ca", "kind", "number"])
    now = pd.Timestamp(ev.as_of)
    for (ca, kind), group in crls.groupby(["issuer_ca", "kind"], observed=True):
        gaps = (
            group[group["this_update"].to_numpy()[1:] > group["next_update"].to_numpy()[:-1]]
            if len(group) > 1
            else group.iloc[0:0]
        )
        for row in gaps.itertuples():
            c.fail(
                f"{kind} {ca}",
                f"gap:{row.number}",
                f"{str(kind).upper()} after number {row.number} came after its nextUpdate",
            )
        last = group.iloc[-1]
        if last["next_update"] < now:
            c.fail(
                f"{kind} {ca}",
                "stale",
                f"{ca}'s latest {str(kind).upper()} (number {last['number']}) passed its "
                f"nextUpdate {last['next_update']:%Y-%m-%d %H:%M}Z",
            )
    c.checked(f"{len(crls)} CRLs/ARLs")


@check("REV-02")
def crls_well_formed(ev: Evidence, c: Checker) -> None:
    from cryptography import x509

    docs = _crl_documents(ev)
    limits = {
        "crl": timedelta(hours=ev.policy.revocation.crl_next_update_hours),
        "arl": timedelta(days=ev.policy.revocation.arl_next_update_days),
    }
    for d in docs:
        row, crl = d["row"], d["crl"]
        subject = f"{row.kind} {row.issuer_ca} #{row.number}"
        if crl is None:
            c.fail(subject, "missing", f"{row.artifact} is missing")
            continue
        if hashlib.sha256(d["data"]).hexdigest() != row.sha256:
            c.fail(subject, "hash", f"{row.artifact} is not the file recorded when it was published")
        issuer = x509.load_der_x509_certificate(ev.ws.inventory.ca_certificate_der(str(row.issuer_ca)))
        if not crl.is_signature_valid(issuer.public_key()):
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
    c.checked(f"{len(docs)} CRL files")


@check("REV-03")
def revocations_published(ev: Evidence, c: Checker) -> None:
    limit = pd.Timedelta(hours=ev.policy.compliance.revocation_publication_hours)
    certs = ev.frames.certificates
    revoked = certs[certs["revoked_at"].notna()]
    if ev.since is not None:
        revoked = revoked[revoked["revoked_at"] >= pd.Timestamp(ev.since)]
    if ev.until is not None:
        revoked = revoked[revoked["revoked_at"] <= pd.Timestamp(ev.until)]
    docs = _crl_documents(ev)
    if revoked.empty:
        c.checked(f"no revocations in the period; {len(docs)} CRLs")
        return
    published = pd.DataFrame(
        [(str(d["row"].issuer_ca), d["row"].this_update, s) for d in docs for s in d["serials"]],
        columns=["issuer_ca", "published", "serial"],
    )
    first = published.groupby(["issuer_ca", "serial"])["published"].min()
    key = pd.MultiIndex.from_arrays([revoked["issuer_ca"].astype(str), revoked["serial"].astype(str)])
    when = pd.Series(first.reindex(key).to_numpy(), index=revoked.index)
    late = revoked[when.isna() | (when - revoked["revoked_at"] > limit)]
    _listed(c, late, "unpublished", lambda r: f"revoked {r.revoked_at:%Y-%m-%d %H:%M}Z and on no CRL within {limit}")
    c.checked(f"{len(revoked)} revocations against {len(docs)} CRLs")


@check("REV-04")
def revoked_serials_real(ev: Evidence, c: Checker) -> None:
    certs = ev.frames.certificates
    revoked = certs.loc[certs["status"] == "revoked", ["issuer_ca", "serial"]].astype(str).assign(known=True)
    entries = pd.DataFrame(
        [
            (str(d["row"].issuer_ca), f"{d['row'].kind} {d['row'].issuer_ca} #{d['row'].number}", s)
            for d in _crl_documents(ev)
            for s in d["serials"]
        ],
        columns=["issuer_ca", "crl", "serial"],
    )
    joined = entries.merge(revoked, on=["issuer_ca", "serial"], how="left")
    for row in joined[joined["known"].isna()].head(20).itertuples():
        c.fail(row.crl, f"serial:{row.serial}", f"serial {row.serial} on the CRL is not a certificate that CA revoked")
    c.checked(f"{len(entries)} CRL entries")


# --- logging ---------------------------------------------------------------------------------
@check("LOG-01")
def journal_intact(ev: Evidence, c: Checker) -> None:
    status = ev.journal_status
    if not status.ok:
        c.fail("journal", "chain", f"journal.jsonl: {status.error}", "journal.jsonl")
    times = [parse_time(e["time"]) for e in ev.journal]
    tolerance = timedelta(seconds=ev.policy.compliance.clock_tolerance_seconds)
    for before, after, entry in zip(times, times[1:], ev.journal[1:], strict=False):
        if after < before - tolerance:
            c.fail(
                "journal",
                f"clock:{entry.get('seq')}",
                f"entry {entry.get('seq')} is dated {before - after} before the one it follows",
            )
    c.checked(f"{len(ev.journal)} journal entries")


@check("LOG-02")
def retention(ev: Evidence, c: Checker) -> None:
    if not ev.journal or ev.journal[0].get("event") != "workspace.init":
        c.fail("journal", "pruned", "the journal does not begin with the workspace's creation: records were removed")
    for ceremony_id, transcript in ev.db("SELECT ceremony_id, transcript FROM ceremonies"):
        if not (ev.ws.root / transcript).is_file():
            c.fail(f"ceremony {ceremony_id}", "missing", f"transcript {transcript} is on record but gone")
    created = parse_time(ev.journal[0]["time"]) if ev.journal else ev.as_of
    years = ev.policy.compliance.retention_years
    c.checked(
        f"records reach back to the workspace's creation {created:%Y-%m-%d} "
        f"({(ev.as_of - created).days} days; retention {years} years)"
    )


# --- personnel -------------------------------------------------------------------------------
@check("PER-01")
def vetted_and_trained(ev: Evidence, c: Checker) -> None:
    seats = 0
    for cer in ev.ceremonies:
        day = cer.day
        for seat, pid in _seated(cer):
            seats += 1
            person = ev.register.people.get(pid)
            subject = f"ceremony {cer.ceremony_id}"
            if person is None:
                c.fail(subject, f"unregistered:{pid}", f"{pid} ({seat}) is not in the participant register")
                continue
            if not set(SEAT_ROLES[seat]) & set(person.roles):
                c.fail(subject, f"role:{pid}", f"{pid} sat as {seat} without that registered role")
            for what, until in (("vetting", person.vetting_expires), ("training", person.training_expires)):
                if day is not None and date.fromisoformat(until) < day:
                    c.fail(subject, f"{what}:{pid}", f"{pid}'s {what} expired {until}, before the ceremony on {day}")
    c.checked(f"{seats} seats at {len(ev.ceremonies)} ceremonies")


@check("PER-02")
def separation_of_duties(ev: Evidence, c: Checker) -> None:
    for serial, requested, approved in ev.db("SELECT serial, requested_by, approved_by FROM revocations"):
        if requested == approved:
            c.fail(f"revocation {serial}", "self-approved", f"{requested} approved their own revocation request")
    for cer in ev.ceremonies:
        for seat, pid in _seated(cer):
            person = ev.register.people.get(pid)
            if person and "auditor" in person.roles and seat != "witnesses":
                c.fail(f"ceremony {cer.ceremony_id}", f"auditor:{pid}", f"auditor {pid} held an operational seat")
        approvers = set(cer.start.get("approved_by") or [])
        if approvers and approvers <= {cer.seats.get("administrator")}:
            c.fail(f"ceremony {cer.ceremony_id}", "self-approved", "the file was approved only by its administrator")
    c.checked("revocations, ceremony seats and approvals")
