"""The assessment report's sections (notebook 80), built from a pack alone: registers through their strict
schemas, figures write-once in the pack, and the notebook executed on a pack."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from ceremony.errors import InputError, StateError
from ceremony.issue.batch import issue_batch
from ceremony.model.config import data_dir
from ceremony.model.policy import load_policy
from ceremony.record import frames as fr
from ceremony.record.workspace import Workspace
from ceremony.reporting import report
from ceremony.reporting.cells import report_html
from ceremony.reporting.evidence import REPORT_NOTEBOOK
from ceremony.reporting.notebooks import notebooks_dir, run_notebook
from tests.support.ceremony_files import device_list


def _finding(control: str, outcome: str, suffix: str, waived: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": f"{control}-{suffix}", "control": control, "outcome": outcome, "subject": f"subject of {control}",
        "code": "code", "message": f"{control} is {outcome}", "evidence": ["journal.jsonl", "transcripts/x.jsonl"],
        "severity": "critical", "waived": waived, "title": f"title of {control}",
    }  # fmt: skip


FINDINGS: dict[str, Any] = {
    "as_of": "2026-12-01T10:00:00+00:00",
    "period": {"from": None, "to": "2026-12-31T23:59:59.999999+00:00"},
    "scope": ["pki"],
    "verdict": {"verdict": "approved with caveats", "because": "a finding is waived", "rule": 3,
                "counted": {"pass": 1, "fail": 1}},
    "previous_pack": "20261101T100000.000000Z",
    "changes": {"new": ["CER-02-aaaa"], "resolved": ["CER-03-dddd"], "persisting": []},
    "controls": [
        {"control": "CER-02", "title": "t", "severity": "critical", "outcome": "fail", "findings": 1, "cites": "5.4"},
        {"control": "CER-08", "title": "t", "severity": "major", "outcome": "waived", "findings": 1, "cites": "5.4"},
        {"control": "KEY-01", "title": "t", "severity": "critical", "outcome": "pass", "findings": 1, "cites": "6.2"},
    ],
    "traceability": [{"control": "CER-02", "requirement": "r", "evidence in this pack": "journal.jsonl",
                      "findings": "CER-02-aaaa"}],
    "findings": [
        _finding("CER-02", "fail", "aaaa"),
        _finding("CER-08", "fail", "bbbb", waived={"approved_by": "victor", "reason": "no recordings of a demo"}),
        _finding("KEY-01", "pass", "cccc"),
    ],
}  # fmt: skip


@pytest.fixture
def key_store_kind() -> str:
    return "software"


@pytest.fixture
def pack(ca_workspace: Workspace, tmp_path: Path) -> Path:
    """A pack as ``build_pack`` leaves it for the report: findings, policy, registers, the inventory snapshot."""
    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=device_list(tmp_path / "f", 2),
                approved_by="bob", progress=False)  # fmt: skip
    root = tmp_path / "pack"
    (root / "registers").mkdir(parents=True)
    (root / "findings.json").write_text(json.dumps(FINDINGS), encoding="utf-8")
    shutil.copy2(data_dir() / "policy" / "s1spkm-parameters.yaml", root / "policy-parameters.yaml")
    for name in ("assessments", "waivers"):
        shutil.copy2(data_dir() / "registers" / f"{name}.yaml", root / "registers" / f"{name}.yaml")
    fr.write_parquet(fr.frames(ca_workspace), root / "inventory")
    return root


def test_the_pack_is_read_through_the_strict_loaders(pack: Path) -> None:
    r = report.load_report(str(pack))
    assert [a.id for a in r.assessments] == ["IA-S1-2026", "IA-S2-2026"]
    assert [w.control for w in r.waivers] == ["CER-08"] and r.policy == load_policy()
    assert r.figures == pack / "report" / "figures" and r.figures.is_dir()
    assert list(r.findings["waived"]) == [False, True, False]


def test_a_malformed_register_is_named_in_the_report_not_read_loosely(pack: Path) -> None:
    waivers = pack / "registers" / "waivers.yaml"
    waivers.write_text(waivers.read_text().replace("approved_by: victor", "approved_by: victor\n    signed: yes"))
    r = report.load_report(pack)  # the report is still written: the checks found the register fatal already
    allowed = "allowed: control, subject, reason, approved_by, expires (line 8)"
    assert r.waivers == () and r.register_errors == (
        f"registers/waivers.yaml: waivers.0.signed is not a field; {allowed}",
    )
    title = report.title_page(r, s1sp="S1SP", signer="victor", evidence_sha256="", evidence_words="")
    not_readable = "**Register not readable:** registers/waivers.yaml: waivers.0.signed is not a field; "
    assert title.texts[1] == not_readable + allowed
    assert report.waivers_section(r).texts == [
        "The waivers register is not readable, so nothing is shown as waived: registers/waivers.yaml: waivers.0.signed "
        f"is not a field; {allowed}"
    ]


def test_no_registers_means_none_on_record_never_the_examples(pack: Path) -> None:
    shutil.rmtree(pack / "registers")
    r = report.load_report(pack)
    assert r.assessments == () and r.waivers == ()
    [title] = report.title_page(r, s1sp="S1SP", signer="victor", evidence_sha256="ab" * 32, evidence_words="w").texts
    assert "| **Assessor of record** | none on record |" in title
    assert report.waivers_section(r).texts == ["No waivers."]


def test_a_report_needs_its_pack(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="parameter pack is required: the evidence pack directory"):
        report.load_report(None)
    with pytest.raises(InputError, match="no such findings file"):
        report.load_report(tmp_path)
    (tmp_path / "findings.json").write_text("{not json")
    with pytest.raises(InputError, match="not a findings file"):
        report.load_report(tmp_path)


def test_the_title_page(pack: Path) -> None:
    r = report.load_report(pack)
    shown = report.title_page(r, s1sp="S1SP for MOC Secure", signer="victor", evidence_sha256="ab" * 32,
                              evidence_words="alpha bravo")  # fmt: skip
    [title] = shown.texts
    last = r.assessments[-1]
    for row in ("| **Service provider** | S1SP for MOC Secure |", "| **Scope** | pki S1SP controls (3 in catalogue",
                "| **Period** | the beginning to 2026-12-31 |", "| **Assessed as of** | 2026-12-01 10:00 UTC |",
                f"| **Assessor of record** | {last.assessor} ({last.assessor_organisation}) |",
                "| **Pack signed by** | victor |", f"`{'ab' * 32}`", "| **Read aloud** | alpha bravo |"):  # fmt: skip
        assert row in title, row


def test_the_verdict_and_its_rule(pack: Path) -> None:
    r = report.load_report(pack)
    shown = report.verdict_section(r)
    head, intro = shown.texts
    assert head.startswith("### Recommended status: **APPROVED WITH CAVEATS**\n\nRule 3: a finding is waived. ")
    assert head.endswith("Findings counted: fail 1, pass 1")
    assert intro.startswith(f"The rule (policy parameters {r.policy.version}):") and shown.report
    rules = shown.table
    assert list(rules["rule"]) == list(range(1, len(r.policy.compliance.verdict) + 1))
    assert list(rules.columns) == ["rule", "verdict", "when outcome", "and severity", "because"]


def test_controls_findings_and_changes(pack: Path) -> None:
    r = report.load_report(pack)
    controls = report.controls_section(r)
    assert controls.pictures == [pack / "report" / "figures" / "controls.png"]
    assert controls.pictures[0].read_bytes()[:4] == b"\x89PNG" and len(controls.table) == 3
    with pytest.raises(StateError, match="write-once"):  # a pack's figures are never redrawn over
        report.controls_section(r)
    problems = report.problems_table(r)
    assert list(problems["id"]) == ["CER-02-aaaa", "CER-08-bbbb"] and list(problems["waived"]) == [False, True]
    assert problems["evidence"].iloc[0] == "journal.jsonl, transcripts/x.jsonl"
    findings = report.findings_section(r)
    blocks, changes, passed = findings.blocks
    # Each finding that is not a pass is a block of its own, its message whole, its waiver and evidence beside it.
    assert blocks.count('<div class="finding ') == 2
    assert '<div class="finding fail">' in blocks and '<div class="finding waived">' in blocks
    assert '<p class="message">CER-02 is fail</p>' in blocks
    assert "Waived by victor: no recordings of a demo" in blocks
    assert "Evidence: <code>journal.jsonl</code>, <code>transcripts/x.jsonl</code>" in blocks
    assert findings.texts[0] == "Against the previous pack (20261101T100000.000000Z): 1 new, 1 resolved, 0 persisting."
    assert changes == "<p><b>New</b> (1): CER-02-aaaa</p>\n<p><b>Resolved</b> (1): CER-03-dddd</p>"
    assert passed == '<ul class="checks"><li><b>KEY-01</b> title of KEY-01: KEY-01 is pass</li></ul>'


def test_a_finding_block_escapes_what_it_quotes_and_names_a_missing_subject() -> None:
    f = {"id": "X-01-a", "control": "X-01", "title": "t", "outcome": "fail", "severity": "major", "subject": "",
         "message": "<script>alert(1)</script> & more", "evidence": [], "waived": None}  # fmt: skip
    block = report.finding_block(f)
    assert "<script>" not in block and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in block
    assert "no subject (the control as a whole)" in block and "Evidence:" not in block


def test_only_passes_and_no_changes(pack: Path) -> None:
    data = FINDINGS | {"findings": [_finding("KEY-01", "pass", "cccc")], "previous_pack": None,
                       "changes": {"new": [], "resolved": [], "persisting": []}}  # fmt: skip
    (pack / "findings.json").write_text(json.dumps(data))
    shown = report.findings_section(report.load_report(pack))
    assert shown.texts == ["No findings other than passes.", "Against the previous pack (none): 0 new, 0 resolved, "
                           "0 persisting.", "#### What each check that passed examined"]  # fmt: skip
    assert shown.blocks == ['<ul class="checks"><li><b>KEY-01</b> title of KEY-01: KEY-01 is pass</li></ul>']


def test_waivers(pack: Path) -> None:
    shown = report.waivers_section(report.load_report(pack))
    assert list(shown.table.columns) == ["control", "subject", "reason", "approved_by", "expires"]
    assert shown.table.loc[0, "subject"] == "every finding of the control"  # the example waiver names no subject
    assert shown.texts == ["1 finding(s) waived; they stay listed above and do not count towards the verdict."]


def test_inventory_ceremonies_and_traceability(pack: Path) -> None:
    r = report.load_report(pack)
    inventory = report.inventory_section(r)
    assert [p.name for p in inventory.pictures] == ["expiry.png", "keys.png"]
    lineage, by_profile = inventory.tables
    assert set(lineage["name"]) == {"root", "issuing"} and by_profile["certificates"].sum() == 2 + 4
    assert report.ceremonies_section(r).texts == ["No live ceremony on record."]
    [trace] = report.traceability_section(r).tables
    assert trace.to_dict("records") == FINDINGS["traceability"]
    (pack / "findings.json").write_text(json.dumps(FINDINGS | {"traceability": [FINDINGS["traceability"][0] |
                                                                                {"findings": "-"}]}))  # fmt: skip
    [trace] = report.traceability_section(report.load_report(pack)).tables
    assert trace["findings"].isna().all()  # printed as a dash, as every missing value


def _ceremony_row(ceremony_id: str, *, rehearsal: bool, sealed: bool) -> dict[str, Any]:
    started = pd.Timestamp("2026-12-01T09:00:00Z")
    return {"ceremony_id": ceremony_id, "type": "root-ca", "started": started, "rehearsal": rehearsal,
            "sealed_at": started + pd.Timedelta(hours=1) if sealed else pd.NaT, "entries": 8 if sealed else None,
            "deviations": 1 if sealed else None, "transcript": "t", "sealed": sealed}  # fmt: skip


def test_a_failed_rehearsal_is_labelled_and_never_shown_under_the_live_id(pack: Path) -> None:
    r = report.load_report(pack)
    rows = [_ceremony_row("root-ca-2026-12", rehearsal=False, sealed=True),
            _ceremony_row("root-ca-2026-12", rehearsal=True, sealed=False)]  # fmt: skip
    r = replace(r, frames=replace(r.frames, ceremonies=pd.DataFrame(rows)))
    shown = report.ceremonies_section(r)
    live, rehearsals = shown.tables
    assert live.to_dict("records") == [{"ceremony": "root-ca-2026-12", "type": "root-ca",
                                        "started": pd.Timestamp("2026-12-01T09:00:00Z"),
                                        "sealed": pd.Timestamp("2026-12-01T10:00:00Z"), "entries": 8,
                                        "deviations": 1}]  # fmt: skip
    assert list(rehearsals["rehearsal of"]) == ["rehearsal of root-ca-2026-12"]
    assert list(rehearsals["sealed"]) == ["not sealed"] and rehearsals["entries"].isna().all()
    assert "#### Rehearsals (not ceremonies of this PKI)" in shown.texts
    html = report_html(rehearsals)
    assert "nan" not in html.lower() and "None" not in html and '<td class="num">\u2014</td>' in html


def test_every_deviation_in_the_packs_transcripts_is_described(pack: Path) -> None:
    from ceremony.record.transcript import Transcript

    assert report.deviations_section(report.load_report(pack)).texts == [
        "No deviation is recorded in the transcripts of the period."
    ]
    (pack / "transcripts").mkdir()
    transcript = Transcript(pack / "transcripts" / "root-ca-2026-12.jsonl")
    transcript.start("root-ca-2026-12", "root-ca", {"time_note": "x"})
    transcript.deviation("the <witness> arrived late", "traffic & weather", ["alice", "wendy"])
    transcript.deviation("step 3 run twice", "the printer jammed", [])
    (pack / "transcripts" / "root-ca-2026-12.attestations.jsonl").write_text("")  # never read as a ceremony
    shown = report.deviations_section(report.load_report(pack))
    assert shown.texts == ["2 deviation(s) in 1 ceremony transcript(s), as this pack's transcripts record them."]
    [blocks] = shown.blocks
    assert blocks.count('<div class="deviation">') == 2
    assert "root-ca-2026-12 \u00b7 entry 2" in blocks and "acknowledged by alice, wendy" in blocks
    assert "<b>What:</b> the &lt;witness&gt; arrived late" in blocks and "<b>Why:</b> traffic &amp; weather" in blocks
    assert "acknowledged by nobody" in blocks
    # A ceremony that began outside the assessed period is not this report's.
    (pack / "findings.json").write_text(json.dumps(FINDINGS | {"period": {"from": "2027-01-01T00:00:00+00:00",
                                                                          "to": None}}))  # fmt: skip
    assert report.deviations(report.load_report(pack)) == []


@pytest.mark.slow
def test_notebook_80_reports_on_a_pack(pack: Path, tmp_path: Path) -> None:
    params = {"workspace": "ws", "pack": str(pack), "signer": "victor", "evidence_sha256": "ab" * 32,
              "evidence_words": "alpha bravo"}  # fmt: skip
    run = run_notebook(notebooks_dir() / REPORT_NOTEBOOK, params, reports_dir=tmp_path / "reports", progress=False)
    figures = sorted(p.name for p in (pack / "report" / "figures").iterdir())
    assert figures == ["controls.png", "expiry.png", "keys.png"]
    outputs = [o for c in nbformat.read(run.executed, as_version=4).cells if c.cell_type == "code" for o in c.outputs]
    kinds = {kind for o in outputs for kind in o.get("data", {})}
    assert {"image/png", "text/html", "text/markdown"} <= kinds
    assert not [o for o in outputs if o.output_type == "error"]
