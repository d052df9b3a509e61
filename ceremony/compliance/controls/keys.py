"""Key controls (KEY): keys in the HSM, root key use, inventory, backups, activation data, rotation, destruction."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence
from ceremony.errors import CeremonyError
from ceremony.model.events import Action, Event
from ceremony.record.symmetric_keys import custody
from ceremony.record.transcript import abandonment


# --- keys ------------------------------------------------------------------------------------
def _kept(ev: Evidence) -> list[Any]:
    """The ceremonies whose work stands: every one but those abandoned (whose keys their abandonment destroyed)."""
    return [cer for cer in ev.all_ceremonies if abandonment(cer.entries) is None]


def _completed(cer: Any) -> bool:
    """Sealed at its end, not sealed as abandoned."""
    return bool(cer.sealed) and abandonment(cer.entries) is None


def _generation_steps(ev: Evidence) -> dict[str, dict[str, Any]]:
    return {s["details"]["key_label"]: s["details"] for cer in _kept(ev) for s in cer.steps(Action.KEY_GENERATE)}


def _generated_at(ev: Evidence) -> dict[str, pd.Timestamp]:
    """When each key label's generation step ran (the earliest, if a label was generated twice)."""
    out: dict[str, pd.Timestamp] = {}
    for cer in _kept(ev):
        for s in cer.steps(Action.KEY_GENERATE):
            if "time" in s:
                when = pd.Timestamp(s["time"])
                label = str(s["details"]["key_label"])
                out[label] = min(out.get(label, when), when)
    return out


def _restore_tests(ev: Evidence) -> dict[str, pd.Timestamp]:
    """CA name -> when a sealed restore ceremony proved a backup of its key (the earliest)."""
    out: dict[str, pd.Timestamp] = {}
    for cer in ev.all_ceremonies:
        if cer.type != "key-restore" or not _completed(cer):
            continue
        ca = str(cer.start.get("ceremony", {}).get("ca"))
        for s in cer.steps(Action.KEY_PROVE):
            if s.get("result") == "ok" and "time" in s:
                when = pd.Timestamp(s["time"])
                out[ca] = min(out.get(ca, when), when)
    return out


def _export_forbidden(ev: Evidence) -> dict[tuple[str, str], dict[str, Any]]:
    """(token, key label) -> what the last step that made the key non-extractable read back."""
    return {
        (str(s["details"].get("token")), str(s["details"].get("key_label"))): s["details"]
        for cer in ev.all_ceremonies
        for s in cer.steps(Action.KEY_FORBID_EXPORT)
    }


def keys_in_hsm(ev: Evidence, c: Checker) -> None:
    f, min_level = ev.frames, ev.policy.compliance.hsm_min_fips_level
    max_days = ev.policy.keys.extractable_max_days
    hsms = {label: h for h in ev.registers["hsms"].hsms for label in h.token_labels}
    generated = _generation_steps(ev)
    generated_at, tested, forbidden = _generated_at(ev), _restore_tests(ev), _export_forbidden(ev)
    now = pd.Timestamp(ev.as_of)
    tokens = set()
    for ca in f.cas.itertuples():
        if ca.key_store != "pkcs11":
            c.fail(f"CA {ca.name}", "software-key", f"CA {ca.name}'s key is in the software key store, not an HSM")
            continue
        token = ev.ws.token_label or "?"
        tokens.add(token)
        step = generated.get(ca.key_label)
        try:  # the attributes as the token holds them now, not as a transcript once recorded them
            held = ev.ws.key_store.attributes(ca.key_label)
            attrs = held.record()
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
        elif attrs.get("EXTRACTABLE") and ca.name in tested:
            c.fail(
                f"CA {ca.name}",
                "extractable-after-restore",
                f"{ca.key_label} on {token} is still EXTRACTABLE after its backup's restore test "
                f"({tested[ca.name]:%Y-%m-%d}): anyone with the PIN can wrap it out",
            )
        elif attrs.get("EXTRACTABLE") and ca.key_label in generated_at:
            age = now - generated_at[ca.key_label]
            if age > pd.Timedelta(days=max_days):
                c.fail(
                    f"CA {ca.name}",
                    "extractable-too-long",
                    f"{ca.key_label} on {token} is still EXTRACTABLE {age.days} days after generation "
                    f"(policy: at most {max_days}, until its backup is restore-tested)",
                )
        record = forbidden.get((token, str(ca.key_label)))
        if record is not None:
            seen = record.get("attributes", {})
            if seen.get("LABEL") != ca.key_label or (held.key_id is not None and seen.get("ID") != held.key_id):
                c.fail(
                    f"CA {ca.name}",
                    "export-forbidden-elsewhere",
                    f"the object made non-extractable on {token} (LABEL {seen.get('LABEL')!r}, ID {seen.get('ID')}) "
                    f"is not the CA key on record ({ca.key_label!r}, ID {held.key_id})",
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
    c.checked(
        f"{len(f.cas)} CA keys and {len(tokens)} token(s); EXTRACTABLE only until the restore test, "
        f"at most {max_days} days"
    )


def _windows(ev: Evidence) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    return [(pd.Timestamp(x.started), pd.Timestamp(x.ended)) for x in ev.all_ceremonies if x.started and x.ended]


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


def backups(ev: Evidence, c: Checker) -> None:
    f = ev.frames
    sealed = {x.ceremony_id: x for x in ev.all_ceremonies if _completed(x)}
    wrapped = ("key-backup", "backup-rewrap")
    backed_up = {x.start["ceremony"].get("key_label") for x in sealed.values() if x.type in wrapped}
    for row in f.cas[f.cas["role"] == "root"].itertuples():
        if row.key_label not in backed_up:
            c.fail(f"CA {row.name}", "no-backup", f"root CA {row.name}'s key has no backup ceremony on record")
    restored = f.asymmetric_keys[f.asymmetric_keys["origin"] == "unwrapped"]
    for k in restored.itertuples():
        cer = sealed.get(str(k.ceremony_id)) if pd.notna(k.ceremony_id) else None
        if cer is None or cer.type not in ("key-restore", "backup-rewrap"):
            c.fail(
                f"key {k.token}/{k.label}",
                "restore-unrecorded",
                f"key {k.label} on {k.token} was restored from a backup with no sealed restore ceremony on record",
            )
    c.checked(f"{len(backed_up)} backed-up keys, {len(restored)} restored copies")


def activation_data(ev: Evidence, c: Checker) -> None:
    initialised = set()
    for cer in ev.all_ceremonies:
        if cer.type in ("token-init", "key-restore") and _completed(cer):
            initialised.add(cer.start.get("ceremony", {}).get("token", {}).get("label"))
    used = 0
    for cer in ev.ceremonies:
        for step in cer.steps(Action.TOKEN_ACTIVATE):
            used += 1
            token = step["details"].get("token")
            if token not in initialised:
                c.fail(
                    f"token {token}",
                    "uninitialised",
                    f"token {token} was used in {cer.ceremony_id} but no token-initialisation ceremony is on record",
                )
    for held in custody(ev.ws.inventory):
        if held.bag_sealed and held.bag_unsealed and held.bag_sealed != held.bag_unsealed:
            c.fail(
                f"key {held.key_label}",
                f"bag:{held.component}",
                f"component {held.component} of {held.key_label} was sealed in bag {held.bag_sealed} "
                f"but unsealed from {held.bag_unsealed}",
            )
    c.checked(f"{used} token activations, component bags")


def components(ev: Evidence, c: Checker) -> None:
    keys = ev.frames.symmetric_keys
    built = keys[keys["origin"] == "components"]
    rows = custody(ev.ws.inventory)
    for label in built["label"].astype(str):
        mine = [r for r in rows if r.key_label == label]
        if len(mine) < 2 or len({r.custodian for r in mine}) < len(mine):
            c.fail(
                f"key {label}",
                "components",
                f"{label} has {len(mine)} components from {len({r.custodian for r in mine})} custodians",
            )
        if any(not r.kcv for r in mine):
            c.fail(f"key {label}", "kcv", f"a component of {label} has no KCV on record")
    c.checked(f"{len(built)} keys built from components")


def rotation(ev: Evidence, c: Checker) -> None:
    keys = ev.frames.symmetric_keys
    now = pd.Timestamp(ev.as_of)
    active = keys[keys["state"] == "active"]
    for k in active[active["expires_at"] <= now].itertuples():
        c.fail(f"key {k.label}", "expired", f"{k.label} is active past its crypto-period ({k.expires_at:%Y-%m-%d})")
    for k in active[active["rotation_due"] <= now].itertuples():
        c.fail(f"key {k.label}", "rotation-due", f"{k.label} was due for rotation on {k.rotation_due:%Y-%m-%d}")
    rotations = {x.ceremony_id for x in ev.all_ceremonies if x.type == "key-rotation" and _completed(x)}
    for k in keys[keys["predecessor"].notna()].itertuples():
        if str(k.ceremony_id) not in rotations:
            c.fail(f"key {k.label}", "unrecorded", f"{k.label} succeeded {k.predecessor} with no rotation ceremony")
    c.checked(f"{len(active)} active symmetric keys")


def destruction(ev: Evidence, c: Checker) -> None:
    # A backup re-wrap destroys its scratch copies under witness in the ceremony that made them.
    destroying = ("key-destruction", "backup-rewrap")
    sealed = {x.ceremony_id for x in ev.all_ceremonies if x.type in destroying and _completed(x)}
    events = [e for e in ev.journal if e.get("event") == Event.KEY_DESTROYED and not e.get("rehearsal")]
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
