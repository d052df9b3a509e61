"""An evidence pack held against a workspace's journal now: the journal must extend the one the pack carried.

The pack's signed manifest names the journal's head (``journal``) and the pack carries the journal itself;
whoever edits the journal afterwards, even a PIN holder who re-chains it and re-signs its checkpoints,
leaves a journal of which the pack's is no longer a prefix.
"""

from __future__ import annotations

import json
from pathlib import Path

from ceremony.compliance.pack import MANIFEST
from ceremony.errors import CeremonyError, InputError
from ceremony.fs import read_regular
from ceremony.record.checkpoints import workspace_identity
from ceremony.record.transcript import read_entries

_MANIFEST_LIMIT = 64 << 20


def pack_against_journal(pack: Path, workspace: Path) -> str | None:
    """None when ``workspace``'s journal extends the journal ``pack`` carries and names in its manifest;
    otherwise one line saying where they part."""
    from ceremony.compliance.controls.records import journal_contradictions

    try:
        manifest = json.loads(read_regular(pack / MANIFEST, _MANIFEST_LIMIT, "pack manifest"))
    except (ValueError, CeremonyError) as exc:
        raise InputError(f"{pack / MANIFEST}: not a pack manifest") from exc
    anchor = manifest.get("journal") if isinstance(manifest, dict) else None
    carried = read_entries(pack / "journal.jsonl")
    now = read_entries(workspace / "journal.jsonl")
    if not isinstance(anchor, dict):
        return "contradicted: the pack's manifest names no journal head (a pack from before anchoring)"
    if workspace_identity(now) != anchor.get("workspace"):
        return f"contradicted: {workspace} is not the workspace this pack was built from"
    if not carried or carried[-1].get("hash") != anchor.get("head") or len(carried) != anchor.get("entries"):
        return "contradicted: the journal in the pack is not the one its manifest names"
    problem = journal_contradictions(now, carried)
    return None if problem is None else f"contradicted: {problem}"
