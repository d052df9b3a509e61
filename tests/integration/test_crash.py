"""Crash consistency: a process killed with SIGKILL at each crash point of CRL publication and of a
ceremony's steps (``ceremony.faults``; batch issuance has its own kill tests in test_batch). After each
kill the inventory, the artifacts and the logs agree, and the work can be resumed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony.cli.main import main
from ceremony.compliance.assessment import run_control
from ceremony.compliance.sources import Evidence
from ceremony.errors import StateError
from ceremony.issue.crl import publish_crl
from ceremony.issue.revocation import revoke
from ceremony.model.catalogue import load_catalogue
from ceremony.record.transcript import verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, approve, device_list, live_workspace, run_examples, variant

REPO = Path(__file__).resolve().parents[2]
CRL_POINTS = ("crl.signed", "crl.written", "crl.journaled", "crl.recorded")
_PUBLISH = """
import sys
from pathlib import Path
from ceremony.issue.crl import publish_crl
from ceremony.record.workspace import Workspace
publish_crl(Workspace.open(Path(sys.argv[1])), "issuing", by="bob")
"""
_STEPS = """
import sys
from pathlib import Path
from ceremony import procedures
ceremony = procedures.begin(Path(sys.argv[1]), Path(sys.argv[2]))
for step in sys.argv[3:]:
    ceremony.step(step)
"""


def _killed_at(point: str, *argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CEREMONY_CRASH_AT": point}
    done = subprocess.run([sys.executable, "-c", *argv], env=env, capture_output=True, text=True)
    assert done.returncode == -9, (point, done.stderr[-1500:])


@pytest.mark.slow
def test_crl_publication_killed_at_every_point_stays_consistent_and_resumes(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    from ceremony.issue.batch import issue_batch

    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", approved_by="bob", progress=False,
                devices=device_list(tmp_path / "list", 3))  # fmt: skip
    revoke(ca_workspace, ca_name="issuing", eui64="00DB123400000001", usage="ds", reason="keyCompromise",
           requested_by="bob", approved_by="alice")  # fmt: skip
    root = ca_workspace.root
    ca_workspace.close()
    trials = 0
    for point in CRL_POINTS * 2:
        _killed_at(point, _PUBLISH, str(root))
        trials += 1
        ws = Workspace.open(root)
        rows = ws.inventory._execute("SELECT number, artifact, sha256 FROM crls WHERE issuer_ca = 'issuing'").fetchall()
        for _number, artifact, digest in rows:  # every recorded CRL is there, byte for byte
            assert hashlib.sha256((root / artifact).read_bytes()).hexdigest() == digest
        on_disk = {p.name for p in (root / "artifacts" / "crls").glob("issuing-*.crl")}
        assert {Path(a).name for _, a, _ in rows} <= on_disk  # files beyond the rows: numbers a crash spent
        assert ws.journal.verify().ok
        ws.close()
    ws = Workspace.open(root)
    done = publish_crl(ws, "issuing", by="bob")  # the resume
    query = "SELECT number FROM crls WHERE issuer_ca = 'issuing' ORDER BY rowid"
    numbers = [r[0] for r in ws.inventory._execute(query)]
    # Every CRL a killed run wrote was recovered into the inventory: none was lost, none is on disk alone.
    assert numbers == list(range(1, len(numbers) + 1)) and done.number == max(numbers) == 7
    on_disk = sorted(int(p.stem.split("-")[-1]) for p in (root / "artifacts" / "crls").glob("issuing-*.crl"))
    assert on_disk == numbers
    recovered = [e for e in ws.journal.entries() if e["event"] == "crl.recover"]
    assert len(recovered) == 4  # the two kills after writing and the two after journaling, before the commit
    ev = Evidence(ws)
    for control in ("REV-02", "REV-04"):
        outcome = run_control(load_catalogue().get(control), ev)
        assert [f.outcome for f in outcome] == ["pass"], (control, outcome)
    ws.close()
    assert trials == 8


_STEP_EVENTS = {"activate": "token.activate", "generate-key": "key.generate", "issue-certificate": "certificate.issue"}


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", list(_STEP_EVENTS))
def test_a_ceremony_killed_after_any_step_leaves_records_that_agree(tmp_path: Path, killed_after: str) -> None:
    """Killed after each of the root ceremony's first three steps: the transcript says where it stopped, the
    inventory holds exactly what those steps made (key pair, certificate) and the files match it."""
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    approve(ws, CEREMONIES / "root-ca.yaml")
    steps = list(_STEP_EVENTS)
    _killed_at(f"step:{killed_after}", _STEPS, str(CEREMONIES / "root-ca.yaml"), str(ws), *steps)
    report = verify_transcript(ws / "transcripts" / "root-ca-2026-12.jsonl")
    assert f"interrupted after step {_STEP_EVENTS[killed_after]}" in report.message
    done = steps[: steps.index(killed_after) + 1]
    opened = Workspace.open(ws)
    keys = opened.inventory._execute("SELECT label FROM asymmetric_keys WHERE purpose = 'ca'").fetchall()
    assert [k[0] for k in keys] == (["ca-s1sp-root"] if "generate-key" in done else [])
    certificates = opened.inventory._execute("SELECT artifact FROM certificates").fetchall()
    assert len(certificates) == (1 if "issue-certificate" in done else 0)
    for (artifact,) in certificates:
        assert (ws / artifact).is_file()
    assert sorted((ws / "artifacts").rglob("*.pem")) == sorted(ws / a for (a,) in certificates)
    (sealed,) = opened.inventory._execute("SELECT sealed_at FROM ceremonies WHERE ceremony_id = 'root-ca-2026-12'")
    assert sealed[0] is None and opened.journal.verify().ok
    opened.close()


@pytest.mark.slow
def test_a_ceremony_killed_mid_step_leaves_an_interrupted_transcript_and_can_be_run_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "token-init")
    approve(ws, CEREMONIES / "root-ca.yaml")
    _killed_at("step:activate", _STEPS, str(CEREMONIES / "root-ca.yaml"), str(ws), "activate", "generate-key")
    transcript = ws / "transcripts" / "root-ca-2026-12.jsonl"
    report = verify_transcript(transcript)
    assert not report.ok and "intact but not sealed (interrupted after step token.activate)" in report.message
    assert main(["transcript", "verify", str(transcript)]) == 1
    capsys.readouterr()
    # The token is still locked by the dead ceremony: reported, never broken.
    again = variant(tmp_path / "files", "root-ca.yaml", {"ceremony_id": "root-ca-2026-12-rerun"})
    approve(ws, again)
    from ceremony import procedures

    with pytest.raises(StateError, match="a stale lock: ceremony root-ca-2026-12 .*its process is gone"):
        procedures.begin(again, ws)
    (ws / "locks" / "token-s1sp-ca-token.lock").unlink()  # a person checked the transcript above
    outcome = procedures.run(again, ws)
    assert verify_transcript(outcome.transcript).ok
    opened = Workspace.open(ws)
    rows = opened.inventory._execute("SELECT ceremony_id, sealed_at FROM ceremonies WHERE type = 'root-ca'").fetchall()
    assert {r[0]: r[1] is not None for r in rows} == {"root-ca-2026-12": False, "root-ca-2026-12-rerun": True}
    opened.close()


ISSUE_POINTS = ("issue.signed", "issue.written", "issue.journaled", "issue.recorded")
REVOKE_POINTS = ("revoke.checked", "revoke.journaled", "revoke.recorded")
_ISSUE = """
import sys
from pathlib import Path
from ceremony.issue.single import issue
from ceremony.model.tbs import Identity
from ceremony.record.workspace import Workspace
issue(Workspace.open(Path(sys.argv[1])), ca_name="issuing", profile_name="ss1sp-device",
      csr=Path(sys.argv[3]).read_bytes(), csr_source=sys.argv[3], identity=Identity(eui64=sys.argv[2], usage="ds"),
      approved_by="bob")
"""
_CLI = "import sys; from ceremony.cli.main import main; sys.exit(main(sys.argv[1:]))"
_REVOKE = """
import sys
from pathlib import Path
from ceremony.issue.revocation import revoke
from ceremony.record.workspace import Workspace
revoke(Workspace.open(Path(sys.argv[1])), ca_name="issuing", serial=sys.argv[2], reason="keyCompromise",
       requested_by="bob", approved_by="alice")
"""


def _unrecorded(ws: Workspace) -> list[str]:
    """Certificate files under artifacts/certificates without their row, and journal revocations the
    inventory does not hold (empty: the records agree)."""
    recorded = {r[0] for r in ws.inventory._execute("SELECT artifact FROM certificates")}
    files = [str(p.relative_to(ws.root)) for p in (ws.root / "artifacts" / "certificates").rglob("*.pem")]
    revoked = {(r[0], r[1]) for r in ws.inventory._execute("SELECT issuer_ca, serial FROM revocations")}
    journalled = {
        (e["ca"], s) for e in ws.journal.entries() if e["event"] == "certificate.revoke" for s in e["serials"]
    }
    return sorted(f for f in files if f not in recorded) + sorted(f"{c} {s}" for c, s in journalled - revoked)


@pytest.mark.slow
@pytest.mark.parametrize("point", ISSUE_POINTS)
def test_single_issuance_killed_at_every_point_is_recovered_by_the_next_command(
    ca_workspace: Workspace, tmp_path: Path, point: str
) -> None:
    root = ca_workspace.root
    ca_workspace.close()
    csrs = device_list(tmp_path / "list", 2, pem=True).parent / "csr"
    _killed_at(point, _ISSUE, str(root), "00DB123400000001", str(csrs / "00DB123400000001-ds.pem"))
    ws = Workspace.open(root)
    written = point != "issue.signed"
    assert len(list((root / "artifacts" / "certificates").rglob("*.pem"))) == int(written)
    publish_crl(ws, "issuing", by="bob")  # the next command that touches the CA
    assert _unrecorded(ws) == []
    catalogue = {c.id: c for c in load_catalogue().controls}
    for control in ("LOG-03", "LOG-04", "LOG-05"):  # and the records agree, by the assessment's own checks
        assert [f.outcome for f in run_control(catalogue[control], Evidence(ws))] == ["pass"], control
    rows = ws.inventory.valid_certificates_of_device("issuing", "00DB123400000001", "ds")
    assert len(rows) == int(written)
    recovered = [e for e in ws.journal.entries() if e["event"] == "certificate.recover"]
    if point in ("issue.written", "issue.journaled"):
        # Recorded now, verified under the CA; the approval comes from the dead run's journal line when it wrote one.
        assert [e["serial"] for e in recovered] == [rows[0].serial]
        assert rows[0].approved_by == ("bob" if point == "issue.journaled" else "unrecorded")
        assert rows[0].eui64 == "00DB123400000001" and rows[0].usage == "ds" and rows[0].profile == "ss1sp-device"
    else:
        assert recovered == []
    ws.close()
    # Running the issuance again never gives the identity a second valid certificate.
    again = subprocess.run([sys.executable, "-c", _CLI, "--workspace", str(root), "issue", "--ca",
                            "issuing", "--profile", "ss1sp-device", "--eui64", "00DB123400000001", "--usage", "ds",
                            "--approved-by", "bob", str(csrs / "00DB123400000001-ds.pem")],
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)  # fmt: skip
    if written:
        assert again.returncode == 2 and "already has a valid ds certificate" in again.stderr, again.stderr
    else:
        assert again.returncode == 0, again.stderr
    ws = Workspace.open(root)
    assert len(ws.inventory.valid_certificates_of_device("issuing", "00DB123400000001", "ds")) == 1
    assert _unrecorded(ws) == [] and ws.journal.verify().ok
    ws.close()


@pytest.mark.slow
def test_a_planted_file_is_not_recorded_but_reported(ca_workspace: Workspace, tmp_path: Path) -> None:
    folder = ca_workspace.root / "artifacts" / "certificates" / "issuing"
    folder.mkdir(parents=True)
    root_pem = (ca_workspace.root / "artifacts" / "cas" / "root.pem").read_bytes()
    (folder / "0123.pem").write_bytes(root_pem)  # a real certificate, but not one the issuing CA signed
    with pytest.raises(StateError, match="is not recorded and is not a certificate of CA issuing: check it by hand"):
        publish_crl(ca_workspace, "issuing", by="bob")
    assert ca_workspace.inventory.count() == 2


@pytest.mark.slow
@pytest.mark.parametrize("point", REVOKE_POINTS)
def test_revocation_killed_at_every_point_is_reconciled_by_the_next_command(
    ca_workspace: Workspace, tmp_path: Path, point: str
) -> None:
    from ceremony.issue.batch import issue_batch

    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", approved_by="bob", progress=False,
                devices=device_list(tmp_path / "list", 2))  # fmt: skip
    serial = ca_workspace.inventory.valid_certificates_of_device("issuing", "00DB123400000001", "ds")[0].serial
    root = ca_workspace.root
    ca_workspace.close()
    _killed_at(point, _REVOKE, str(root), serial)
    ws = Workspace.open(root)
    published = publish_crl(ws, "issuing", by="bob")  # the next command that touches the CA
    assert _unrecorded(ws) == []
    journalled = point != "revoke.checked"
    assert ws.inventory.certificate("issuing", serial).status == ("revoked" if journalled else "valid")  # type: ignore[union-attr]
    assert published.entries == int(journalled)
    recovered = [e for e in ws.journal.entries() if e["event"] == "revocation.recover"]
    assert [e["serials"] for e in recovered] == ([[serial]] if point == "revoke.journaled" else [])
    assert ws.journal.verify().ok
    catalogue = {c.id: c for c in load_catalogue().controls}
    for control in ("LOG-03", "LOG-04", "LOG-05"):  # and the records agree, by the assessment's own checks
        assert [f.outcome for f in run_control(catalogue[control], Evidence(ws))] == ["pass"], control
    ws.close()
