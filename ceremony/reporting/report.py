"""The assessment report (notebook 80): each section of it built from the evidence pack alone, so the report
can be reproduced from the pack; registers are read through their strict schemas, never as raw YAML."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ceremony.errors import ConfigError, InputError
from ceremony.fs import read_regular
from ceremony.model.config import load_model
from ceremony.model.policy import PolicyParameters, load_policy
from ceremony.model.registers import Assessment, AssessmentRegister, Waiver, Waivers
from ceremony.record import frames as fr
from ceremony.reporting.cells import Shown
from ceremony.reporting.inventory_plots import expiry_png, expiry_table, keys_png, keys_table, new_figure, save_png
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


# --- sections, in report order ----------------------------------------------------------------
def title_page(r: Report, *, s1sp: str, signer: str, evidence_sha256: str, evidence_words: str) -> Shown:
    """Who is assessed, the scope and period, the assessor of record, the signer and the evidence fingerprint."""
    data, period = r.data, r.data["period"]
    last = r.assessments[-1] if r.assessments else None
    assessor = f"{last.assessor} ({last.assessor_organisation})" if last else "none on record"
    scope = " and ".join(data["scope"]) or "nothing"
    return Shown((f"""
| | |
|---|---|
| **Service provider** | {s1sp} |
| **Scope** | {scope} S1SP controls ({len(data['controls'])} in catalogue controls.yaml) |
| **Period** | {period['from'] or 'the beginning'} to {period['to'] or data['as_of']} |
| **Assessed as of** | {data['as_of']} |
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
    counts = controls["outcome"].value_counts().reindex(list(OUTCOMES)).fillna(0) if len(controls) else None
    fig, ax = new_figure(8, 2.2)
    title = "Controls by outcome (worst finding not waived)"
    if counts is not None:
        counts.plot.barh(ax=ax, title=title)
    else:
        ax.set_title(title)
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


def findings_section(r: Report) -> Shown:
    """The findings that are not passes, then how they changed since the previous pack."""
    problems = problems_table(r)
    changes = r.data["changes"]
    parts: list[Any] = [problems if len(problems) else "No findings other than passes."]
    parts.append(
        f"Against the previous pack ({r.data['previous_pack'] or 'none'}): {len(changes['new'])} new, "
        f"{len(changes['resolved'])} resolved, {len(changes['persisting'])} persisting."
    )
    if any(changes.values()):
        parts.append(changes_table(r))
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


def ceremonies_table(r: Report) -> pd.DataFrame:
    cer = r.frames.ceremonies
    shown = cer.drop(columns=["transcript"], errors="ignore")
    return shown.assign(started=cer["started"].dt.strftime("%Y-%m-%d %H:%M")) if "started" in cer else shown


def ceremonies_section(r: Report) -> Shown:
    return Shown((ceremonies_table(r),), report=True)


def traceability_section(r: Report) -> Shown:
    """Requirement → evidence: each control, the pack files it rests on, and its findings."""
    return Shown((pd.DataFrame(r.data["traceability"]),), report=True)
