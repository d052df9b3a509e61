"""Ceremony controls (CER): approved scripts, intact attested transcripts, witnesses, quorums, deviations."""

from __future__ import annotations

import hashlib
from collections import Counter

import pandas as pd

from ceremony.compliance.controls.seats import person_key, seats_of
from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence, parse_time
from ceremony.errors import CeremonyError
from ceremony.model.events import Action, Event
from ceremony.procedures.attestation import (
    FILE_KEY_NOTE,
    attestation_entries,
    key_fingerprint,
    key_kind,
    load_attestation_key,
)
from ceremony.record.symmetric_keys import custody
from ceremony.record.transcript import abandonment


# --- ceremonies ------------------------------------------------------------------------------
def scripts_approved(ev: Evidence, c: Checker) -> None:
    needed = ev.policy.ceremony.approvals_required
    for cer in ev.ceremonies:
        start, begun = cer.start, cer.started
        sha = start.get("file_sha256")
        approvers = {
            e["by"]
            for e in ev.journal
            if e.get("event") == Event.CEREMONY_APPROVE
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


def transcripts_intact(ev: Evidence, c: Checker) -> None:
    recorded = {r.ceremony_id: r.transcript_sha256 for r in ev.ws.inventory.ceremonies()}
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


def _workspace_key_files(ev: Evidence) -> dict[str, str]:
    """Fingerprint -> file name of every private key file kept in the workspace's ``secrets/attestation/``
    (a key file there is anyone's who holds the workspace; one it cannot open is left out)."""
    folder = ev.ws.secrets_dir / "attestation"
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.key")) if folder.is_dir() else []:
        try:
            found[key_fingerprint(load_attestation_key(path).public_key())] = path.name
        except CeremonyError:
            continue
    return found


def attested_with_own_keys(ev: Evidence, c: Checker) -> None:
    in_workspace = _workspace_key_files(ev)
    count = own = 0
    for cer in ev.ceremonies:
        if not cer.sealed:
            continue
        weak: list[str] = []
        for entry in attestation_entries(cer.path):
            count += 1
            fingerprint = "sha256:" + hashlib.sha256(bytes.fromhex(str(entry.get("public_key", "")))).hexdigest()
            if key_kind(entry) == "token" and fingerprint not in in_workspace:
                own += 1
            else:
                weak.append(str(entry.get("person")))
        if weak:
            where = " kept in this workspace's secrets/attestation/" if in_workspace else ""
            c.fail(
                f"ceremony {cer.ceremony_id}",
                "file-keys",
                f"attested with a {FILE_KEY_NOTE}{where} by {', '.join(weak)}: whoever holds those files can "
                "attest as them; each participant attests with the key on their own token (ceremony people enrol)",
                cer.path.name,
            )
    c.checked(f"{count} attestations of {len(ev.ceremonies)} transcripts, {own} with the participants' own tokens")


def witnessed(ev: Evidence, c: Checker) -> None:
    needed = ev.policy.ceremony.witnesses_min
    for cer in ev.ceremonies:
        witnesses = cer.seats.get("witnesses", [])
        others = {pid for seat, pid in seats_of(cer) if seat != "witnesses"}
        if len(witnesses) < needed:
            c.fail(f"ceremony {cer.ceremony_id}", "too-few", f"{len(witnesses)} witness(es); {needed} needed")
        for pid in sorted(set(witnesses) & others):
            c.fail(f"ceremony {cer.ceremony_id}", f"witness-seated:{pid}", f"witness {pid} also holds another seat")
    c.checked(f"{len(ev.ceremonies)} ceremonies' witnesses")


def _quorum_sizes(ev: Evidence) -> dict[str, int]:
    """m of each split on record, by purpose (e.g. ``s1sp-ca-token.user-pin``)."""
    return {str(s["purpose"]): int(s["m"]) for cer in ev.all_ceremonies for s in cer.splits() if "purpose" in s}


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
            if entry.get("event") != Event.STEP or "shares_presented" not in details:
                continue
            uses += 1
            purpose = f"{details['token']}.user-pin" if "token" in details else str(details.get("purpose", ""))
            if not purpose and cer.type in ("key-restore", "backup-rewrap"):  # a backup key's shares
                purpose = f"{cer.start.get('ceremony', {}).get('key_label')}.kek"
            m = sizes.get(purpose)
            people = {person_key(ev, pid) for pid in details["shares_presented"]}
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


def custodians_distinct(ev: Evidence, c: Checker) -> None:
    need = ev.policy.ceremony.custodian_organisations_min
    splits = 0
    for cer in ev.ceremonies:
        for split in cer.splits():
            splits += 1
            holders = list(split["shares"])
            people: dict[tuple[str, str], list[str]] = {}
            for pid in holders:
                people.setdefault(person_key(ev, pid), []).append(pid)
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
    by_key: dict[str, Counter[tuple[str, str]]] = {}
    for component in custody(ev.ws.inventory):
        by_key.setdefault(component.key_label, Counter())[person_key(ev, component.custodian)] += 1
    for label, counts in by_key.items():
        if any(n > 1 for n in counts.values()):
            c.fail(f"key {label}", "two-components", f"one person holds two components of {label}")
    c.checked(f"{splits} splits and {len(by_key)} component sets")


def deviations_acknowledged(ev: Evidence, c: Checker) -> None:
    count = 0
    for cer in ev.ceremonies:
        seated = {pid for _, pid in seats_of(cer)}
        for e in cer.entries:
            if e.get("event") != Event.DEVIATION:
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


#: The ceremonies that make a CA and its certificate from a naming document.
_CA_CEREMONIES = ("root-ca", "issuing-ca", "issuing-ca-renewal", "root-rollover")


def ca_certificate_as_named(ev: Evidence, c: Checker) -> None:
    cas = ev.frames.cas.set_index("name")
    for cer in ev.ceremonies:
        if cer.type not in _CA_CEREMONIES or abandonment(cer.entries) is not None:
            continue  # an abandoned ceremony issued nothing (CER-11 reports it)
        spec = cer.start.get("ceremony", {})
        issued = cer.steps(Action.CERTIFICATE_ISSUE)
        name = spec.get("ca")
        if not issued or name not in cas.index:
            c.fail(f"ceremony {cer.ceremony_id}", "no-certificate", f"no certificate for CA {name} on record")
            continue
        details = issued[0]["details"]  # the CA's own certificate (a rollover's later steps issue links)
        issuer = cas.loc[name, "issuer_ca"] if pd.notna(cas.loc[name, "issuer_ca"]) else name
        cert = ev.ws.inventory.certificate(str(issuer), str(cas.loc[name, "serial"]))
        if cert is None or cert.fingerprint != details.get("fingerprint"):
            c.fail(
                f"CA {name}",
                "differs",
                f"the inventory's certificate for {name} is not the one ceremony {cer.ceremony_id} issued",
            )
        if f"CN={spec.get('naming', {}).get('common_name')}" not in str(details.get("subject")):
            c.fail(f"CA {name}", "name", f"subject {details.get('subject')} does not carry the naming document's CN")
        checks = (cer.steps(Action.NAMING_CHECK) or [{}])[-1].get("details", {}).get("checks", {})
        if not checks or not all(checks.values()):
            c.fail(f"CA {name}", "naming-check", f"the naming check in {cer.ceremony_id} did not pass: {checks}")
    c.checked("CA ceremonies' certificates against their naming documents")


def abandonments_recorded(ev: Evidence, c: Checker) -> None:
    """An abandoned ceremony is a deviation on record: reported with its reason and witnesses for the assessor
    to review (a minor finding); its witnesses must be registered people, and the keys it destroyed gone."""
    abandoned = 0
    on_token: set[str] | None = None
    for cer in ev.ceremonies:
        entry = abandonment(cer.entries)
        if entry is None:
            continue
        abandoned += 1
        subject = f"ceremony {cer.ceremony_id}"
        witnesses = list(entry.get("witnesses") or {})
        when = str(entry.get("time", ""))[:10]
        destroyed = [d for d in entry.get("destroyed") or [] if d.get("gone")]
        what = "; ".join(
            [f"key {d['key_label']} destroyed on {d['token']}" for d in destroyed]
            + [f"token {t} deleted" for t in entry.get("tokens_deleted") or []]
            + [f"by hand: {t}" for t in entry.get("by_hand") or []]
        )
        c.fail(
            subject,
            "abandoned",
            f"{cer.type} ceremony {cer.ceremony_id} abandoned on {when}: {entry.get('reason')}; witnessed by "
            f"{', '.join(witnesses) or 'nobody'}" + (f" ({what})" if what else ""),
            cer.path.name,
        )
        unregistered = [pid for pid in witnesses if pid not in ev.register.people]
        if len(set(witnesses)) < 2 or unregistered:
            strangers = f"; not registered: {', '.join(unregistered)}" if unregistered else ""
            c.fail(
                subject,
                "witnesses",
                f"the abandonment of {cer.ceremony_id} needs two registered witnesses (got "
                f"{', '.join(witnesses) or 'none'}{strangers})",
                cer.path.name,
            )
        for d in destroyed:
            if d.get("token") != ev.ws.token_label:
                continue
            if on_token is None:
                on_token = set(ev.token_objects.get(str(ev.ws.token_label), []))
            if d["key_label"] in on_token and not _replaced(ev, cer.ceremony_id, str(d["key_label"])):
                c.fail(
                    f"key {d['token']}/{d['key_label']}",
                    "still-on-token",
                    f"{d['key_label']}, destroyed by the abandonment of {cer.ceremony_id}, is still on {d['token']}",
                )
    c.checked(f"{len(ev.ceremonies)} ceremonies, {abandoned or 'none'} abandoned")


def _replaced(ev: Evidence, ceremony_id: str, label: str) -> bool:
    """Whether a later ceremony generated a new key under the label an abandonment freed."""
    return any(
        cer.ceremony_id != ceremony_id and abandonment(cer.entries) is None
        for cer in ev.all_ceremonies
        for s in cer.steps(Action.KEY_GENERATE)
        if s.get("details", {}).get("key_label") == label
    )
