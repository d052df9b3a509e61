"""The assessment report (notebook 80): each section of it built from the evidence pack alone, so the report
can be reproduced from the pack; registers are read through their strict schemas, never as raw YAML."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from ceremony.compliance.sources import CeremonyRecord
from ceremony.errors import ConfigError, InputError
from ceremony.fs import read_regular
from ceremony.model.config import load_model
from ceremony.model.events import Event
from ceremony.model.policy import PolicyParameters, load_policy
from ceremony.model.registers import Assessment, AssessmentRegister, Waiver, Waivers
from ceremony.record import frames as fr
from ceremony.record.transcript import read_entries, verify_transcript
from ceremony.reporting.cells import MISSING, Html, Shown, cell_text
from ceremony.reporting.inventory_plots import (
    counts_axis,
    expiry_png,
    expiry_table,
    keys_png,
    keys_table,
    new_figure,
    save_png,
)
from ceremony.reporting.parameters import required_path

#: findings.json holds one finding per control and subject; a pack of a very large estate stays far below this.
FINDINGS_LIMIT = 256 * 1024 * 1024
OUTCOMES = ("pass", "fail", "indeterminate", "fatal", "waived", "not-applicable")


@dataclass(frozen=True)
class Report:
    """What the report reads from the pack: the findings file, the policy parameters and registers as
    packed (a register the workspace keeps none of is empty: the examples never stand in), the inventory."""

    pack: Path
    data: dict[str, Any]
    policy: PolicyParameters
    assessments: tuple[Assessment, ...]
    waivers: tuple[Waiver, ...]
    frames: fr.Frames
    #: Where the report's figures go: ``<pack>/report/figures/`` (write-once).
    figures: Path
    #: A packed register that does not match its schema, as its loader says (the checks report it as fatal).
    register_errors: tuple[str, ...] = ()

    @property
    def findings(self) -> pd.DataFrame:
        """Every finding, ``waived`` as a flag (the waiver itself is in the waivers section)."""
        frame = pd.DataFrame(self.data["findings"])
        if "waived" in frame:
            frame["waived"] = frame["waived"].notna()
        return frame


def load_report(pack: str | Path | None) -> Report:
    """Read the pack ``ceremony evidence build`` passes (``findings.json``, ``policy-parameters.yaml``,
    ``registers/``, ``inventory/``) and make its figures directory."""
    root = required_path("pack", pack, "the evidence pack directory (ceremony evidence build passes it)")
    try:
        data = json.loads(read_regular(root / "findings.json", FINDINGS_LIMIT, "findings file"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{root / 'findings.json'}: not a findings file ({type(exc).__name__})") from None
    errors: list[str] = []
    assessments = _register(root, "assessments", AssessmentRegister, errors)
    waivers = _register(root, "waivers", Waivers, errors)
    figures = root / "report" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    return Report(
        pack=root,
        data=data,
        policy=load_policy(root / "policy-parameters.yaml"),
        assessments=tuple(assessments.assessments) if isinstance(assessments, AssessmentRegister) else (),
        waivers=tuple(waivers.waivers) if isinstance(waivers, Waivers) else (),
        frames=fr.read_parquet(root / "inventory"),
        figures=figures,
        register_errors=tuple(errors),
    )


def _register(root: Path, name: str, model: type[AssessmentRegister] | type[Waivers], errors: list[str]) -> Any:
    """The workspace's own register as packed, strictly; None when the workspace keeps none, or when it does
    not match its schema (the error is kept for the report: the checks that read it failed on it already)."""
    path = root / "registers" / f"{name}.yaml"
    if not path.is_file():
        return None
    try:
        return load_model(model, path)
    except ConfigError as exc:
        errors.append(exc.message.replace(str(root) + "/", ""))
        return None


def when(text: str | None) -> str:
    """An ISO 8601 time from the pack as the report prints it (to the minute, UTC), or a dash."""
    return cell_text(pd.Timestamp(text)) if text else MISSING


# --- sections, in report order ----------------------------------------------------------------
def title_page(r: Report, *, s1sp: str, signer: str, evidence_sha256: str, evidence_words: str) -> Shown:
    """Who is assessed, the scope and period, the assessor of record, the signer and the evidence fingerprint."""
    data, period = r.data, r.data["period"]
    last = r.assessments[-1] if r.assessments else None
    assessor = f"{last.assessor} ({last.assessor_organisation})" if last else "none on record"
    scope = " and ".join(data["scope"]) or "nothing"
    begins = pd.Timestamp(period["from"]).strftime("%Y-%m-%d") if period["from"] else "the beginning"
    ends = pd.Timestamp(period["to"]).strftime("%Y-%m-%d") if period["to"] else when(data["as_of"])  # days, inclusive
    return Shown((f"""
| | |
|---|---|
| **Service provider** | {s1sp} |
| **Scope** | {scope} S1SP controls ({len(data['controls'])} in catalogue controls.yaml) |
| **Period** | {begins} to {ends} |
| **Assessed as of** | {when(data['as_of'])} |
| **Assessor of record** | {assessor} |
| **Pack signed by** | {signer} |
| **Evidence fingerprint** | `{evidence_sha256}` |
| **Read aloud** | {evidence_words} |
""", *(f"**Register not readable:** {e}" for e in r.register_errors)), report=True)  # fmt: skip


def rules_table(r: Report) -> pd.DataFrame:
    """The verdict rule of the policy parameters, one row per clause in the order they are tried."""
    rows = [
        {
            "rule": i,
            "verdict": rule.verdict,
            "when outcome": ", ".join(rule.when.outcome) or "any",
            "and severity": ", ".join(rule.when.severity) or "any",
            "because": rule.because,
        }
        for i, rule in enumerate(r.policy.compliance.verdict, start=1)
    ]
    return pd.DataFrame(rows, columns=["rule", "verdict", "when outcome", "and severity", "because"])


def verdict_section(r: Report) -> Shown:
    """The recommended status, the rule clause that decided it, and the whole rule."""
    v = r.data["verdict"]
    counted = ", ".join(f"{k} {n}" for k, n in sorted(v["counted"].items()))
    head = f"### Recommended status: **{v['verdict'].upper()}**\n\nRule {v['rule']}: {v['because']}. "
    intro = (
        f"The rule (policy parameters {r.policy.version}): the first rule a finding that is not waived meets decides."
    )
    return Shown((head + "Findings counted: " + counted, intro, rules_table(r)), report=True)


def controls_section(r: Report) -> Shown:
    """``controls.png`` (controls by outcome) and the control table."""
    controls = pd.DataFrame(r.data["controls"])
    counts = controls["outcome"].value_counts().reindex(list(OUTCOMES)).fillna(0).astype(int) if len(controls) else None
    fig, ax = new_figure(8, 2.2)
    ax.set_title("Controls by outcome (worst finding not waived)")
    if counts is not None:
        bars = ax.barh(list(counts.index), list(counts.values))
        ax.bar_label(bars, padding=2, fontsize="small")
        ax.invert_yaxis()  # in the order of OUTCOMES, top down
    counts_axis(ax, "x", "controls")
    return Shown((save_png(fig, r.figures / "controls.png"), controls), report=True)


def problems_table(r: Report) -> pd.DataFrame:
    """Every finding that is not a pass (or not applicable), with the evidence it rests on."""
    findings = r.findings
    columns = ["id", "control", "outcome", "waived", "subject", "message", "evidence"]
    if not len(findings):
        return pd.DataFrame(columns=columns)
    problems = findings[~findings["outcome"].isin(["pass", "not-applicable"])]
    return problems[columns].assign(evidence=problems["evidence"].map(", ".join))


def changes_table(r: Report) -> pd.DataFrame:
    """Each finding that is new, resolved or persisting against the previous pack."""
    rows = [{"finding": i, "change": kind} for kind, ids in r.data["changes"].items() for i in ids]
    return pd.DataFrame(rows, columns=["finding", "change"])


def finding_block(f: dict[str, Any]) -> str:
    """One finding as a block of paragraphs: its id and control, outcome, severity and subject, the message whole,
    the waiver that covers it, and the pack files it rests on (every value escaped)."""
    outcome = "waived" if f.get("waived") else str(f["outcome"])
    labels = f'<span class="label {escape(str(f["outcome"]))}">{escape(str(f["outcome"]))}</span>'
    if f.get("waived"):
        labels += ' <span class="label waived">waived</span>'
    subject = (
        f"subject <code>{escape(f['subject'])}</code>" if f.get("subject") else "no subject (the control as a whole)"
    )
    parts = [
        f'<div class="finding {escape(outcome)}">',
        f'<div class="head">{escape(f["id"])} \u00b7 {escape(f["control"])} {escape(f.get("title", ""))}</div>',
        f'<div class="meta">{labels} severity {escape(str(f.get("severity", MISSING)))} \u00b7 {subject}</div>',
        f'<p class="message">{escape(f["message"])}</p>',
    ]
    if f.get("waived"):
        w = f["waived"]
        until = f", until {escape(str(w['expires']))}" if w.get("expires") else ""
        parts.append(f'<div class="meta">Waived by {escape(str(w.get("approved_by", MISSING)))}{until}: '
                     f'{escape(str(w.get("reason", MISSING)))}</div>')  # fmt: skip
    if f.get("evidence"):
        files = ", ".join(f"<code>{escape(e)}</code>" for e in f["evidence"])
        parts.append(f'<div class="evidence">Evidence: {files}</div>')
    return "\n".join([*parts, "</div>"])


def checks_passed(r: Report) -> Html:
    """What each check that passed (or did not apply) examined, one line each."""
    items = [
        f"<li><b>{escape(f['control'])}</b> {escape(f.get('title', ''))}"
        f"{' (not applicable)' if f['outcome'] == 'not-applicable' else ''}: {escape(f['message'])}</li>"
        for f in r.data["findings"]
        if f["outcome"] in ("pass", "not-applicable")
    ]
    return Html(f'<ul class="checks">{"".join(items)}</ul>' if items else "<p>No check passed.</p>")


def changes_text(r: Report) -> Html:
    """The findings new, resolved and persisting since the previous pack, by id."""
    changes = r.data["changes"]
    lines = [
        f"<p><b>{kind.capitalize()}</b> ({len(changes[kind])}): {escape(', '.join(changes[kind]))}</p>"
        for kind in ("new", "resolved", "persisting")
        if changes[kind]
    ]
    return Html("\n".join(lines))


def findings_section(r: Report) -> Shown:
    """Each finding that is not a pass as a block (message whole, waiver, evidence), how the findings changed
    since the previous pack, then what every check that passed examined."""
    problems = [f for f in r.data["findings"] if f["outcome"] not in ("pass", "not-applicable")]
    changes = r.data["changes"]
    parts: list[Any] = (
        [Html("\n".join(finding_block(f) for f in problems))] if problems else ["No findings other than passes."]
    )
    parts.append(
        f"Against the previous pack ({r.data['previous_pack'] or 'none'}): {len(changes['new'])} new, "
        f"{len(changes['resolved'])} resolved, {len(changes['persisting'])} persisting."
    )
    if any(changes.values()):
        parts.append(changes_text(r))
    parts += ["#### What each check that passed examined", checks_passed(r)]
    return Shown(tuple(parts), report=True)


#: What a waiver without a subject covers (ceremony.model.registers.Waiver).
EVERY_FINDING = "every finding of the control"


def waivers_table(r: Report) -> pd.DataFrame:
    """The packed waivers, one row each; a waiver naming no subject covers every finding of its control."""
    rows = [w.model_dump() | {"subject": w.subject or EVERY_FINDING} for w in r.waivers]
    return pd.DataFrame(rows, columns=list(Waiver.model_fields))


def waivers_section(r: Report) -> Shown:
    """The waivers in the packed register, and how many findings they waive."""
    unreadable = [e for e in r.register_errors if e.startswith("registers/waivers.yaml")]
    if unreadable:
        return Shown((f"The waivers register is not readable, so nothing is shown as waived: {unreadable[0]}",), True)
    if not r.waivers:
        return Shown(("No waivers.",), report=True)
    findings = r.findings
    waived = int(findings["waived"].sum()) if "waived" in findings else 0
    note = f"{waived} finding(s) waived; they stay listed above and do not count towards the verdict."
    return Shown((waivers_table(r), note), report=True)


def inventory_section(r: Report) -> Shown:
    """``expiry.png``, ``keys.png`` (when the inventory holds keys), the CA lineage and the certificates by
    profile, usage and role: the inventory snapshot in the pack, as of the assessment."""
    when = pd.Timestamp(r.data["as_of"]).to_pydatetime()
    title = "Valid certificates by time to expiry"
    parts: list[Any] = [expiry_png(expiry_table(r.frames, when), r.figures / "expiry.png", title=title, height=3)]
    keys = keys_table(r.frames, when)
    if len(keys):
        parts.append(keys_png(keys, r.figures / "keys.png", height=2.4))
    parts += [fr.ca_lineage(r.frames), fr.by_profile_usage_role(r.frames)]
    return Shown(tuple(parts), report=True)


def ceremonies_table(r: Report, *, rehearsals: bool = False) -> pd.DataFrame:
    """The live ceremonies on record (``rehearsals``: the rehearsal area's runs instead, each named as the rehearsal
    of the ceremony it practised, never under the live id); one that stopped before its seal reads "not sealed"."""
    cer = r.frames.ceremonies
    chosen = cer[cer["rehearsal"].astype(bool) == rehearsals]
    ids = [f"rehearsal of {c}" for c in chosen["ceremony_id"]] if rehearsals else list(chosen["ceremony_id"])
    return pd.DataFrame(
        {
            "rehearsal of" if rehearsals else "ceremony": ids,
            "type": [str(t) for t in chosen["type"]],
            "started": list(chosen["started"]),
            "sealed": ["not sealed" if pd.isna(t) else t for t in chosen["sealed_at"]],
            "entries": list(chosen["entries"]),
            "deviations": list(chosen["deviations"]),
        }
    )


def ceremonies_section(r: Report) -> Shown:
    """The live ceremonies, then (apart, and labelled) the rehearsals: practice runs in the rehearsal area against
    a throwaway token, none of them a ceremony of this PKI."""
    live = ceremonies_table(r)
    parts: list[Any] = [live if len(live) else "No live ceremony on record."]
    rehearsals = ceremonies_table(r, rehearsals=True)
    if len(rehearsals):
        parts += [
            "#### Rehearsals (not ceremonies of this PKI)",
            "Practice runs in the rehearsal area against a throwaway token; nothing they did is live. A rehearsal that "
            "was stopped before its seal reads *not sealed*.",
            rehearsals,
        ]
    return Shown(tuple(parts), report=True)


def _in_period(r: Report, started: datetime | None) -> bool:
    period = r.data["period"]
    if started is None:
        return True
    return (not period["from"] or started >= pd.Timestamp(period["from"])) and (
        not period["to"] or started <= pd.Timestamp(period["to"])
    )


def deviations(r: Report) -> list[dict[str, Any]]:
    """Every deviation recorded in the pack's transcripts of ceremonies that began in the period: the ceremony,
    the entry, when, what departed from the script, why, and who acknowledged it."""
    found = []
    for path in sorted((r.pack / "transcripts").glob("*.jsonl")):
        if path.name.endswith(".attestations.jsonl"):
            continue
        record = CeremonyRecord(path, read_entries(path), verify_transcript(path))
        if not _in_period(r, record.started):
            continue
        for e in record.entries:
            if e.get("event") == Event.DEVIATION:
                found.append({"ceremony": record.ceremony_id, "type": record.type, "entry": e.get("seq"),
                              "time": e.get("time"), "what": e.get("what"), "why": e.get("why"),
                              "acknowledged_by": list(e.get("acknowledged_by") or [])})  # fmt: skip
    return found


def deviation_block(d: dict[str, Any]) -> str:
    """One deviation as a block: the ceremony and entry, what, why and who acknowledged it (escaped)."""
    acked = ", ".join(d["acknowledged_by"]) or "nobody"
    return (
        f'<div class="deviation"><div class="head">{escape(str(d["ceremony"]))} \u00b7 entry {escape(str(d["entry"]))}'
        f'</div><div class="meta">{escape(str(d["type"]))} ceremony \u00b7 {escape(when(d["time"]))} \u00b7 '
        f"acknowledged by {escape(acked)}</div>"
        f'<p class="message"><b>What:</b> {escape(str(d["what"] or MISSING))}</p>'
        f'<p class="message"><b>Why:</b> {escape(str(d["why"] or MISSING))}</p></div>'
    )


def deviations_section(r: Report) -> Shown:
    """Every deviation on record in the period, each described (CER-07 checks that each is acknowledged)."""
    found = deviations(r)
    if not found:
        return Shown(("No deviation is recorded in the transcripts of the period.",), report=True)
    ceremonies = len({d["ceremony"] for d in found})
    head = f"{len(found)} deviation(s) in {ceremonies} ceremony transcript(s), as this pack's transcripts record them."
    return Shown((head, Html("\n".join(deviation_block(d) for d in found))), report=True)


def traceability_section(r: Report) -> Shown:
    """Requirement → evidence: each control, the pack files it rests on, and its findings."""
    rows = [{k: (None if v == "-" else v) for k, v in row.items()} for row in r.data["traceability"]]
    return Shown((pd.DataFrame(rows, columns=list(r.data["traceability"][0]) if rows else None),), report=True)
