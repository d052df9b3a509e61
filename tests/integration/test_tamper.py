"""The tamper campaign: an insider with write access to a copy of the demo workspace (and, for some edits,
the PIN) makes each of the 29 edits of issue J; each must be flagged by ``ceremony checks run`` (or
``transcript verify`` / ``evidence verify``) with a finding that names it, and none may turn the verdict to
"approved". Then a PIN holder re-chains and re-signs the whole journal after a pack was built: the next
assessment and ``evidence verify --against`` of the old pack show the contradiction."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.keys.pkcs11 import find_softhsm_module
from tests.support.processes import in_child
from tests.support.tamper import first, keeping, overwrite, query, rewrite, sql

pytestmark = [pytest.mark.slow]  # on SoftHSM2, in processes of their own (see ``demo``)
REPO = Path(__file__).resolve().parents[2]
ISSUING, ROOT = "s1sp-issuing", "s1sp-root"


@dataclass(frozen=True)
class Demo:
    workspace: Path
    reports: Path
    evidence_pack: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo on SoftHSM2, built by the command line in a process of its own (this process never opens a
    token, so the tests need not fork), its runs and packs in its own reports/ (issue K)."""
    if find_softhsm_module() is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is not installed, and CI must run the tamper campaign")
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    base = tmp_path_factory.mktemp("tamper")
    done = _cli("demo", "--workspace", str(base / "ws"), "--devices", "3", "--json", cwd=base)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    workspace = Path(result["workspace"])
    assert Path(result["evidence_pack"]).is_relative_to(workspace / "reports" / "evidence")
    return Demo(workspace, workspace / "reports", Path(result["evidence_pack"]))


def _cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ceremony", *argv], env=env, capture_output=True, text=True,
                          timeout=600, cwd=cwd)  # fmt: skip


Assessed = tuple[str, set[tuple[str, str]]]


def _checks_run(ws: Path, reports: Path) -> Assessed:
    """``ceremony checks run --json``: the verdict and the (control, code) of every failed or undecided finding."""
    done = _cli("--workspace", str(ws), "checks", "run", "--json", "--reports", str(reports))
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    failed = {(f["control"], f["code"]) for f in report["findings"] if f["outcome"] in ("fail", "indeterminate")}
    return str(report["verdict"]), failed


def _assessed_here(ws: Path, reports: Path) -> Assessed:
    from ceremony.compliance.assessment import run_checks, verdict
    from ceremony.compliance.sources import Evidence
    from ceremony.model.catalogue import load_catalogue
    from ceremony.record.workspace import Workspace

    opened = Workspace.open(ws, assessing=True)
    try:
        ev = Evidence(opened, pack_folders=(reports / "evidence",))
        findings = run_checks(load_catalogue(), ev)
        result = verdict(findings, ev.policy.compliance.verdict)
    finally:
        opened.close()
    return result.verdict, {(f.control, f.code) for f in findings if f.outcome in ("fail", "indeterminate")}


def _assess(ws: Path, reports: Path) -> Assessed:
    """What ``checks run`` finds (the same functions), in a forked child: the copy's token is opened there."""
    return in_child(_assessed_here, ws, reports)


def _tamper_tool(*argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "tests.support.tamper", *argv], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


# --- the edits ------------------------------------------------------------------------------------------
Edit = Callable[[Path], None]


def _single_serial(ws: Path) -> str:
    return str(query(ws, "SELECT serial FROM certificates WHERE batch_id IS NULL AND artifact LIKE "
                         "'artifacts/certificates/%' ORDER BY rowid")[0][0])  # fmt: skip


def _batch_serial(ws: Path, status: str = "valid") -> str:
    return str(query(ws, "SELECT serial FROM certificates WHERE batch_id IS NOT NULL AND status = ? ORDER BY rowid",
                     (status,))[0][0])  # fmt: skip


def a1(ws: Path) -> None:
    sql(ws, "DELETE FROM certificates WHERE serial = ?", (_single_serial(ws),))


def a2(ws: Path) -> None:
    sql(ws, "DELETE FROM certificates WHERE serial = ?", (_batch_serial(ws),))


def a3(ws: Path) -> None:
    serial = _batch_serial(ws, "revoked")
    sql(ws, "DELETE FROM revocations WHERE serial = ?", (serial,))
    sql(ws, "DELETE FROM certificates WHERE serial = ?", (serial,))


def b1(ws: Path) -> None:
    serial = _batch_serial(ws, "revoked")
    sql(ws, "DELETE FROM revocations WHERE serial = ?", (serial,))
    sql(ws, "UPDATE certificates SET status = 'valid' WHERE serial = ?", (serial,))


def b2(ws: Path) -> None:
    sql(ws, "UPDATE revocations SET reason = 'affiliationChanged' WHERE serial = ?", (_batch_serial(ws, "revoked"),))


def b3(ws: Path) -> None:
    sql(ws, "UPDATE certificates SET status = 'revoked' WHERE serial = ?", (_batch_serial(ws),))


def b4(ws: Path) -> None:
    sql(ws, "UPDATE certificates SET approved_by = 'alice' WHERE serial = ?", (_single_serial(ws),))


def c1(ws: Path) -> None:
    rewrite(ws / "journal.jsonl", keeping(lambda e: e.get("event") != "certificate.revoke"))


def c2(ws: Path) -> None:
    rewrite(ws / "journal.jsonl", lambda es: first(es, event="certificate.issue").update(approved_by="alice"))


def c3(ws: Path) -> None:
    rewrite(ws / "journal.jsonl", keeping(lambda e: not (e.get("event") == "ceremony.approve"
                                                         and e.get("ceremony_id") == "root-ca-2026-12")))  # fmt: skip


def c4(ws: Path) -> None:
    rewrite(ws / "journal.jsonl", keeping(lambda e: e.get("event") != "certificate.revoke"), chain=False)


def c5(ws: Path) -> None:
    lines = (ws / "journal.jsonl").read_bytes().splitlines(keepends=True)
    overwrite(ws / "journal.jsonl", b"".join(lines[:-3]))


def c5_past_a_checkpoint(ws: Path) -> None:
    """The journal cut back to before its last checkpoint (checkpoints.jsonl still holds it)."""
    lines = (ws / "journal.jsonl").read_bytes().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if b'"journal.checkpoint"' in line)
    overwrite(ws / "journal.jsonl", b"".join(lines[: last - 1]))


def c6(ws: Path) -> None:
    rewrite(ws / "journal.jsonl", keeping(lambda e: e.get("event") != "key.destroyed"))


def d1(ws: Path) -> None:
    rows = query(ws, "SELECT artifact FROM certificates WHERE artifact LIKE 'artifacts/certificates/%' ORDER BY rowid")
    overwrite(ws / rows[0][0], (ws / rows[1][0]).read_bytes())


def d2(ws: Path) -> None:
    overwrite(ws / "artifacts" / "cas" / f"{ISSUING}.pem", (ws / "artifacts" / "cas" / f"{ROOT}.pem").read_bytes())


def d3(ws: Path) -> None:
    """Another CRL #1 of the same CA in the file's place (signed by a PIN holder: the writer's own copy)."""
    _tamper_tool("crl", str(ws))


def d4(ws: Path) -> None:
    bundle = ws / str(query(ws, "SELECT bundle FROM batches")[0][0])
    certificates = x509.load_pem_x509_certificates(bundle.read_bytes())
    overwrite(bundle, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates[:-1]))


def e(ws: Path) -> None:
    bundle = ws / str(query(ws, "SELECT bundle FROM batches")[0][0])
    one = x509.load_pem_x509_certificates(bundle.read_bytes())[0]
    overwrite(
        ws / "artifacts" / "certificates" / ISSUING / "00DEADBEEF.pem", one.public_bytes(serialization.Encoding.PEM)
    )


def _edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    overwrite(path, yaml.safe_dump(data, sort_keys=False).encode())


def f1(ws: Path) -> None:
    _edit_yaml(ws / "registers" / "hsms.yaml", lambda d: d["hsms"][0].update(fips_level=3, fips_certificate="#4711"))


def f2(ws: Path) -> None:
    waiver = {"control": "KEY-02", "reason": "the ARL was signed in a later, witnessed session",
              "approved_by": "victor", "expires": "2027-12-01"}  # fmt: skip
    _edit_yaml(ws / "registers" / "waivers.yaml", lambda d: d["waivers"].append(waiver))


def f3(ws: Path) -> None:
    mallory = {"name": "Mallory M", "roles": ["approver"], "vetted": "2026-01-05", "trained": "2026-01-06"}

    def add(d: Any) -> None:
        template = dict(d["people"]["alice"])
        d["people"]["mallory"] = template | {k: v for k, v in mallory.items() if k in template or k == "roles"}

    _edit_yaml(ws / "people.yaml", add)
    sql(ws, "UPDATE certificates SET approved_by = 'mallory' WHERE batch_id IS NOT NULL")
    sql(ws, "UPDATE batches SET approved_by = 'mallory'")
    rewrite(ws / "journal.jsonl", lambda es: first(es, event="batch.start").update(approved_by="mallory"))
    done = _cli("--workspace", str(ws), "registers", "record", "--by", "alice", "--reason", "mallory joins")
    assert done.returncode == 0, done.stderr


def f4(ws: Path) -> None:
    def later(d: Any) -> None:
        for document in d["documents"]:
            if "next_review" in document:
                document["next_review"] = "2031-12-01"

    _edit_yaml(ws / "registers" / "documents.yaml", later)


def g1(ws: Path) -> None:
    sql(ws, "UPDATE crls SET this_update = '2026-11-01T09:00:00+00:00' WHERE kind = 'arl'")


def g2(ws: Path) -> None:
    def backdate(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            entry["time"] = (datetime.fromisoformat(entry["time"]) - timedelta(days=30)).isoformat()

    rewrite(ws / "journal.jsonl", backdate)


def g3(ws: Path) -> None:
    serial = _single_serial(ws)
    (issued,) = query(ws, "SELECT issued_at FROM certificates WHERE serial = ?", (serial,))[0]
    earlier = (datetime.fromisoformat(issued) - timedelta(days=365)).isoformat()
    sql(ws, "UPDATE certificates SET issued_at = ? WHERE serial = ?", (earlier, serial))


def g4(ws: Path) -> None:
    serial = _batch_serial(ws, "revoked")
    (revoked,) = query(ws, "SELECT revoked_at FROM revocations WHERE serial = ?", (serial,))[0]
    earlier = (datetime.fromisoformat(revoked) - timedelta(days=10)).isoformat()
    sql(ws, "UPDATE revocations SET revoked_at = ? WHERE serial = ?", (earlier, serial))


def _transcript(ws: Path) -> Path:
    return ws / "transcripts" / "issuing-ca-2026-12.jsonl"


def h1(ws: Path) -> None:
    def edit(entries: list[dict[str, Any]]) -> None:
        first(entries, event="step")["actors"].append("mallory")

    rewrite(_transcript(ws), edit)


def h2(ws: Path) -> None:
    _tamper_tool("reseal", str(ws), str(_transcript(ws)), "keep")


def h3(ws: Path) -> None:
    _tamper_tool("reseal", str(ws), str(_transcript(ws)), "reattest")


@dataclass(frozen=True)
class Case:
    edit: Edit
    #: (control, code) findings the edit must add; each names the edit.
    expected: tuple[tuple[str, str], ...]


CASES: dict[str, Case] = {
    "a1": Case(a1, (("LOG-04", "row-missing"), ("LOG-04", "unrecorded"))),
    "a2": Case(a2, (("LOG-04", "rows"), ("LOG-04", "bundle"))),
    "a3": Case(a3, (("REV-04", "serial"), ("LOG-04", "revocation-missing"))),
    "b1": Case(b1, (("LOG-04", "revocation-missing"),)),
    "b2": Case(b2, (("LOG-04", "revocation-reason"), ("LOG-04", "crl-reason"))),
    "b3": Case(b3, (("LOG-04", "status"),)),
    "b4": Case(b4, (("LOG-04", "approved-by"),)),
    "c1": Case(c1, (("LOG-04", "revocation-unlogged"), ("LOG-03", "rewritten"))),
    "c2": Case(c2, (("LOG-04", "approved-by"), ("LOG-03", "rewritten"))),
    "c3": Case(c3, (("CER-01", "unapproved"), ("LOG-03", "rewritten"))),
    "c4": Case(c4, (("LOG-01", "chain"),)),
    "c5": Case(c5, (("LOG-03", "contradicted"), ("GOV-06", "unrecorded"))),
    "c5-past-a-checkpoint": Case(c5_past_a_checkpoint, (("LOG-03", "truncated"),)),
    "c6": Case(c6, (("LOG-04", "destroyed-unlogged"), ("LOG-03", "rewritten"))),
    "d1": Case(d1, (("LOG-04", "artifact"),)),
    "d2": Case(d2, (("LOG-04", "ca-certificate"),)),
    "d3": Case(d3, (("REV-02", "hash"),)),
    "d4": Case(d4, (("LOG-04", "bundle"),)),
    "e": Case(e, (("LOG-04", "unrecorded"),)),
    "f1": Case(f1, (("GOV-06", "changed"), ("GOV-06", "token-model"))),
    "f2": Case(f2, (("GOV-06", "changed"),)),
    "f3": Case(f3, (("GOV-06", "listed-late"),)),
    "f4": Case(f4, (("GOV-06", "changed"),)),
    "g1": Case(g1, (("LOG-05", "this-update"),)),
    "g2": Case(g2, (("LOG-03", "rewritten"), ("LOG-05", "issued-at"))),
    "g3": Case(g3, (("LOG-05", "issued-before-validity"), ("LOG-05", "issued-at"))),
    "g4": Case(g4, (("LOG-05", "revoked-at"), ("LOG-04", "crl-date"))),
    "h1": Case(h1, (("CER-02", "broken"),)),
    "h2": Case(h2, (("LOG-03", "transcript-resealed"),)),
    "h3": Case(h3, (("LOG-03", "transcript-resealed"),)),
}


def _names(expected: tuple[str, str], finding: tuple[str, str]) -> bool:
    """A finding's code is the expected one, or it with a subject (``serial:1A2B``)."""
    return finding[0] == expected[0] and (finding[1] == expected[1] or finding[1].startswith(expected[1] + ":"))


def _copy(demo: Demo, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    # The SQLite shared-memory index is rebuilt on open; it can vanish while a copy is taken.
    shutil.copytree(demo.workspace, target, symlinks=True, ignore=shutil.ignore_patterns("*.lock", "run", "*-shm"))
    return target


@pytest.fixture(scope="module")
def baseline(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Assessed:
    ws = _copy(demo, tmp_path_factory.mktemp("baseline"))
    found = _checks_run(ws, demo.reports)
    assert _assess(ws, demo.reports) == found  # the command line and the functions the campaign calls agree
    return found


def test_the_untampered_demo_fails_none_of_the_cross_checks(baseline: tuple[str, set[tuple[str, str]]]) -> None:
    _, failed = baseline
    assert not {f for f in failed if f[0] in ("LOG-03", "LOG-04", "LOG-05", "GOV-06")}, failed


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_edit_is_flagged_by_the_finding_that_names_it(
    case: str, demo: Demo, baseline: tuple[str, set[tuple[str, str]]], tmp_path: Path
) -> None:
    ws = _copy(demo, tmp_path)
    CASES[case].edit(ws)
    verdict, failed = _assess(ws, demo.reports)
    new = failed - baseline[1]
    missing = [x for x in CASES[case].expected if not any(_names(x, f) for f in new)]
    assert not missing, (case, missing, sorted(new))
    assert verdict != "approved"


def test_a_pin_holder_who_rechains_and_resigns_the_journal_is_contradicted_by_the_pack(
    demo: Demo, baseline: tuple[str, set[tuple[str, str]]], tmp_path: Path
) -> None:
    ws = _copy(demo, tmp_path)
    _tamper_tool("resign-journal", str(ws), "approver")
    sql(ws, "UPDATE certificates SET approved_by = 'alice' WHERE serial = ?", (_single_serial(ws),))
    # The journal alone is consistent again: its checkpoints verify over the new heads.
    verdict, failed = _assess(ws, tmp_path / "no-packs")
    assert not {f for f in failed - baseline[1] if f[0] in ("LOG-03", "LOG-04")}, failed
    # The pack built before the edit contradicts it.
    verdict, failed = _assess(ws, demo.reports)
    assert ("LOG-03", "contradicted") in failed and verdict != "approved"
    done = _cli("evidence", "verify", str(demo.evidence_pack), "--against", str(ws))
    assert done.returncode == 1 and "contradicted: its journal entry" in done.stdout, done.stdout
    untouched = _cli("evidence", "verify", str(demo.evidence_pack), "--against", str(demo.workspace))
    assert "extends the journal this pack carries" in untouched.stdout, untouched.stdout
