"""Custody controls: no quorum of any secret rests in the workspace (KEY-09), and the workspace is what it was
marked at init (GOV-05).

Both read the workspace's files as found, not the record of them: a share card left unprinted, a share
deposited for unattended runs, a PIN file, a component. A demo, rehearsal or test workspace holds such
things by design (its unattended runs need them); it fails KEY-09 all the same, and says what it is, so
that its verdict is honest about what the deposited shares mean: its keys can be rebuilt from its disk.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from ceremony.compliance.findings import Checker
from ceremony.compliance.sources import Evidence
from ceremony.errors import CeremonyError
from ceremony.model.config import load_model
from ceremony.model.events import Action, Event
from ceremony.record.transcript import abandonment
from ceremony.record.workspace import WORKSPACE_FILE, WorkspaceConfig, recorded_purpose

#: Whole PINs and passphrases: the files trial workspaces may keep in ``secrets/``.
PIN_FILES = ("token.pin", "so.pin", "software-store.passphrase")
_CARD_HEADER = "SHARE CARD - "
_CARD_READ_LIMIT = 4096


def _split_history(ev: Evidence) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Every m-of-n split on record, by purpose, oldest first: (time, ceremony id, split record), from the steps
    of the transcripts (an abandoned ceremony's splits open nothing: its token or key was destroyed)."""
    # purpose -> ceremony id -> (time, record): a ceremony's last record of a split is its split (a PIN change
    # records the split it hands out, then the same split once the token took it).
    found: dict[str, dict[str, tuple[str, dict[str, Any]]]] = defaultdict(dict)

    def visit(node: Any, when: str, ceremony_id: str) -> None:
        if isinstance(node, dict):
            if {"purpose", "m", "n", "shares"} <= set(node) and isinstance(node["shares"], dict):
                found[str(node["purpose"])][ceremony_id] = (when, node)
            for value in node.values():
                visit(value, when, ceremony_id)

    for ceremony in ev.all_ceremonies:
        if abandonment(ceremony.entries) is not None:
            continue
        cid = str(ceremony.start.get("ceremony_id", ceremony.path.stem))
        for entry in ceremony.entries:
            visit(entry.get("details"), str(entry.get("time") or ""), cid)
    return {
        purpose: sorted(((t, cid, rec) for cid, (t, rec) in splits.items()), key=lambda s: (s[0], s[1]))
        for purpose, splits in found.items()
    }


def _splits(ev: Evidence) -> dict[str, dict[str, Any]]:
    """The current m-of-n split of every secret on record (purpose -> the latest split's record)."""
    return {purpose: history[-1][2] for purpose, history in _split_history(ev).items()}


def _retired_cards(ev: Evidence) -> dict[str, set[str]]:
    """ceremony id of a split -> the purposes whose cards of that split a later ceremony recorded retired."""
    retired: dict[str, set[str]] = defaultdict(set)
    for ceremony in ev.all_ceremonies:
        for entry in ceremony.entries:
            if entry.get("event") == Event.STEP and entry.get("step") == Action.CARDS_RETIRE:
                for purpose, record in ((entry.get("details") or {}).get("retired") or {}).items():
                    if isinstance(record, dict):
                        retired[str(record.get("split_by"))].add(str(purpose))
    return retired


#: How a secret whose current split a leaver holds a share of is re-split without them.
_RESPLIT = {
    "user-pin": "a pin-change ceremony listing them under leaving",
    "so-pin": "a pin-change ceremony (pins: [so]) listing them under leaving",
    "kek": "a backup-rewrap ceremony listing them under leaving (a new backup key, the old backup retired)",
}


def shares_held_by_custodians(ev: Evidence, c: Checker) -> None:
    """KEY-10: every share of a current split is held by a registered custodian who has not left, and every
    replaced split's cards were recorded retired by the ceremony that replaced them."""
    people = ev.register.people
    today = ev.as_of.date()
    retired = _retired_cards(ev)
    history = _split_history(ev)
    for purpose, splits in sorted(history.items()):
        _, split_by, current = splits[-1]
        for holder in sorted(current["shares"]):
            person = people.get(holder)
            why = (
                "is not in the participant register"
                if person is None
                else f"left the PKI on {person.left}"
                if person.left is not None and date.fromisoformat(person.left) <= today
                else "is no longer registered for the custodian role"
                if "custodian" not in person.roles
                else None
            )
            if why is not None:
                kind = purpose.rsplit(".", 1)[-1]
                c.fail(
                    f"split {purpose}",
                    "leaver-holds-share",
                    f"{holder} {why} and still holds a share of the current {purpose} split ({split_by}); re-split it "
                    f"without them, rotating the secret: {_RESPLIT.get(kind, 'a custodian change of that key')}",
                    f"transcripts/{split_by}.jsonl",
                )
        for _, old_by, _ in splits[:-1]:
            if purpose not in retired.get(old_by, set()):
                c.fail(
                    f"split {purpose}",
                    "cards-not-retired",
                    f"the {purpose} cards split by {old_by} were replaced, but no ceremony recorded them retired",
                    f"transcripts/{old_by}.jsonl",
                )
    replaced = sum(len(splits) - 1 for splits in history.values())
    c.checked(f"the holders of {len(history)} current splits; the cards of {replaced} replaced splits")


def _components_on_record(ev: Evidence) -> dict[str, int]:
    """Key label -> how many components make it (all of them are needed: XOR split)."""
    made: dict[str, int] = {}
    for ceremony in ev.all_ceremonies:
        for entry in ceremony.entries:
            keys = (entry.get("details") or {}).get("keys")
            if isinstance(keys, dict):
                for label, record in keys.items():
                    if isinstance(record, dict) and isinstance(record.get("components"), dict):
                        made[str(label)] = len(record["components"])
    return made


def _card_purpose(path: Path) -> str | None:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(_CARD_READ_LIMIT)
    except OSError:
        return None
    for line in head.splitlines():
        if line.startswith(_CARD_HEADER) and " - ceremony " in line:
            return line.removeprefix(_CARD_HEADER).split(" - ceremony ", 1)[0]
    return None


def _regular_files(directory: Path, pattern: str) -> list[Path]:
    return sorted(p for p in directory.glob(pattern) if p.is_file() and not p.is_symlink())


def secrets_at_rest(ev: Evidence, c: Checker) -> None:
    root = ev.ws.root

    def rel(path: Path) -> str:
        return str(path.relative_to(root))

    trial = "" if ev.ws.live else f" ({ev.ws.mark}: left for its unattended runs; a live workspace refuses them)"
    for name in PIN_FILES:
        path = ev.ws.secrets_dir / name
        if path.exists() or path.is_symlink():
            c.fail(rel(path), "pin-at-rest", f"a whole PIN or passphrase rests in {rel(path)}{trial}", rel(path))
    at_rest: dict[str, dict[str, str]] = defaultdict(dict)  # purpose -> custodian -> where
    shares_dir = ev.ws.secrets_dir / "shares"
    for path in _regular_files(shares_dir, "*/*.share"):
        at_rest[path.parent.name][path.name.removesuffix(".share")] = rel(path)
    for path in _regular_files(ev.ws.share_cards_dir, "*.txt"):
        purpose = _card_purpose(path)
        if purpose is not None:
            custodian = path.name.removesuffix(".txt").rsplit(".", 1)[-1]
            at_rest[purpose].setdefault(custodian, rel(path))
    splits = _splits(ev)
    floor = ev.policy.ceremony.min_quorum_m
    for purpose, held in sorted(at_rest.items()):
        split = splits.get(purpose)
        m = int(split["m"]) if split else floor
        if len(held) >= m:
            of = f"of the {split['n']} shares " if split else "shares "
            c.fail(
                purpose,
                "quorum-at-rest",
                f"{len(held)} {of}of {purpose} ({m} rebuild it) rest in the workspace{trial}",
                *sorted(held.values()),
            )
    components: dict[str, set[str]] = defaultdict(set)
    for path in _regular_files(ev.ws.secrets_dir / "components", "*/*.component"):
        components[path.parent.name].add(rel(path))
    for path in _regular_files(ev.ws.share_cards_dir, "*.component-*.txt"):
        label = path.name.rsplit(".component-", 1)[0].split(".", 1)[-1]
        components[label].add(rel(path))
    made = _components_on_record(ev)
    for label, where in sorted(components.items()):
        needed = made.get(label, 2)
        custodians = {Path(w).name.removesuffix(".component").removesuffix(".txt").rsplit(".", 1)[-1] for w in where}
        if len(custodians) >= needed:
            c.fail(
                label,
                "components-at-rest",
                f"all {needed} components of {label} rest in the workspace{trial}",
                *sorted(where),
            )
    c.checked(f"secrets/ and share-cards/ against {len(splits)} splits and {len(made)} component sets")


def workspace_marked(ev: Evidence, c: Checker) -> None:
    root = ev.ws.root
    recorded = recorded_purpose(root)
    try:
        says = load_model(WorkspaceConfig, root / WORKSPACE_FILE).purpose
    except CeremonyError as exc:
        c.indeterminate(WORKSPACE_FILE, "unreadable", exc.message)
        return
    if recorded in (None, "unknown"):
        c.fail("journal.jsonl", "mark-missing", "the journal does not open with the workspace's init entry")
    elif recorded != says:
        c.fail(
            WORKSPACE_FILE,
            "mark-changed",
            f"{WORKSPACE_FILE} says {says!r}, but the journal recorded {recorded!r} at init",
            WORKSPACE_FILE,
            "journal.jsonl",
        )
    if "live" in (recorded, says):
        for ceremony in ev.all_ceremonies:
            start = ceremony.start
            if start.get("rehearsal"):
                continue
            traits = []
            if start.get("attended") is False:
                traits.append("was run unattended")
            purpose = start.get("workspace_purpose")
            if purpose not in (None, "live"):
                traits.append(f"was run in a {purpose} workspace")
            if traits:
                c.fail(
                    ceremony.ceremony_id,
                    "trial-evidence",
                    f"a live workspace's ceremony {ceremony.ceremony_id} {' and '.join(traits)}",
                    str(ceremony.path.relative_to(root)),
                )
    c.checked(f"marked {recorded or says!r} at init; {len(ev.all_ceremonies)} ceremonies' runs")
