"""The CA revocation ceremony end to end: revoke, ARL in the ceremony, affected certificates, the timeline."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony import procedures
from ceremony.cli.main import main
from ceremony.errors import ConfigError, StateError
from ceremony.issue.batch import issue_batch
from ceremony.issue.revocation import revoke
from ceremony.issue.single import create_ca, issue
from ceremony.model.ceremony_file import load_ceremony
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, subject_name
from ceremony.record.revocations import revocation
from ceremony.record.transcript import read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, approve, device_list, live_workspace, run, run_examples, variant
from tests.support.processes import in_child

ROOT, ISSUING, NEW_ISSUING = "s1sp-root", "s1sp-issuing", "s1sp-issuing-b"
DEVICE, ORG, BEFORE = "00DB123456780001", "90B3D51F30000001", "00DB123456780099"
FILE = CEREMONIES / "ca-revocation.yaml"


def _csr(profile: str, identity: Identity) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject_name(get_profile(profile, {}), identity))
    return builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM
    )


def _estate(root: Path) -> dict[str, str]:
    """A device's DS (revoked) and KA certificates and an organisation's DS from the issuing CA: serial by name."""
    ws = Workspace.open(root)
    try:
        made = {}
        for name, profile, identity in (
            ("device-ds", "ss1sp-device", Identity(eui64=DEVICE, usage="ds")),
            ("device-ka", "ss1sp-device", Identity(eui64=DEVICE, usage="ka")),
            ("org-ds", "ss1sp-organisation", Identity(eui64=ORG, usage="ds", role="02", name="S1SPTEST")),
        ):
            issued = issue(ws, ca_name=ISSUING, profile_name=profile, csr=_csr(profile, identity),
                           csr_source=f"test:{name}", identity=identity, approved_by="bob")  # fmt: skip
            made[name] = issued.record.serial
        revoke(ws, ca_name=ISSUING, serial=made["device-ds"], reason="superseded", requested_by="bob",
               approved_by="alice")  # fmt: skip
        made["issuing-ca"] = ws.inventory.ca(ISSUING).serial
        return made
    finally:
        ws.close()


def _steps(transcript: Path) -> dict[str, dict[str, Any]]:
    return {str(e["step"]): e for e in read_entries(transcript) if e.get("event") == "step"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def estate(tmp_path: Path, key_store_kind: str) -> tuple[Path, dict[str, str]]:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "issuing-ca")
    return ws, _estate(ws)


def test_a_ca_revocation_revokes_publishes_the_arl_lists_the_affected_and_records_the_timeline(
    estate: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, made = estate
    outcome = run(ws, FILE)
    assert verify_transcript(outcome.transcript).ok
    assert main(["--workspace", str(ws), "transcript", "verify", str(outcome.transcript)]) == 0
    assert "sealed" in capsys.readouterr().out
    steps = _steps(outcome.transcript)
    assert list(steps) == ["token.activate", "ca.revoke", "arl.publish", "affected.list", "incident.record"]
    # Revoked on record, by two people, for the reason the file names.
    live = Workspace.open(ws)
    try:
        done = revocation(live.inventory, ROOT, made["issuing-ca"])
        assert done is not None and (done.reason, done.requested_by, done.approved_by) == (
            "keyCompromise", "bob", "victor")  # fmt: skip
        issuing_key = live.inventory.ca(ROOT).key_label
    finally:
        live.close()
    # The ARL, signed in the ceremony by the root, lists the issuing CA's serial with its reason.
    arl = outcome.outputs["arl"]
    assert arl == ws / "artifacts" / "crls" / f"{ROOT}-1.arl"
    shown = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(arl), "-noout", "-text"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    text = shown.stdout
    block = text.split(f"Serial Number: {made['issuing-ca']}", 1)
    assert len(block) == 2, text
    assert "Key Compromise" in block[1].split("Serial Number:", 1)[0]
    assert steps["arl.publish"]["details"]["entry_reason"] == "keyCompromise"
    # Sealed with the root's key (the issuer's), as the ARL is signed with it.
    seal = read_entries(outcome.transcript)[-1]
    assert seal["event"] == "seal" and seal["key_label"] == issuing_key
    # Every certificate of the issuing CA still valid, and the devices' re-certification plan.
    affected = _rows(outcome.outputs["affected_certificates"])
    assert sorted(r["serial"] for r in affected) == sorted([made["device-ka"], made["org-ds"]])
    plan = _rows(outcome.outputs["recertification_plan"])
    assert list(plan[0]) == ["eui64", "usage", "csr", "serial"]
    assert [(r["eui64"], r["usage"], r["serial"]) for r in plan] == [(DEVICE, "ka", made["device-ka"])]
    assert plan[0]["csr"].startswith("recorded:") and len(plan[0]["csr"]) == len("recorded:") + 64
    assert steps["affected.list"]["details"]["affected"] == 2 and steps["affected.list"]["details"]["devices"] == 1
    assert steps["affected.list"]["details"]["devices_without_recorded_csr"] == 0
    # The timeline: detection and PMA notification from the register, the rest from the inventory and the ARL.
    timeline = steps["incident.record"]["details"]
    assert timeline["timeline"]["detected_at"] == "2026-12-01T09:30:00+00:00"
    assert timeline["timeline"]["pma_notified_at"] == "2026-12-01T09:50:00+00:00"
    assert timeline["timeline"]["revoked_at"] == steps["ca.revoke"]["details"]["revoked_at"]
    assert timeline["timeline"]["arl_this_update"] == steps["arl.publish"]["details"]["this_update"]
    assert timeline["on_time"] == {"revocation": True, "arl": True, "pma_notification": True}
    assert steps["incident.record"]["result"] == "ok"


def test_the_plan_re_certifies_the_devices_under_another_ca_from_their_archived_csrs(
    estate: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan is a device list ``ceremony issue --devices`` takes as it is: each device's archived CSR (its proof
    of possession) under the identity the plan names, issued by another issuing CA (the one-valid-certificate rule
    is per issuing CA: no --rekey). A device whose CSR the archive lacks is affected but not in the plan."""
    ws, made = estate
    live = Workspace.open(ws)
    try:
        fleet = issue_batch(live, ca_name=ISSUING, profile_name="ss1sp-device", approved_by="bob", progress=False,
                            devices=device_list(tmp_path / "fleet", 2))  # fmt: skip
        # A certificate from before the archive existed: its CSR's SHA-256 is on record, the CSR is not.
        identity = Identity(eui64=BEFORE, usage="ds")
        old = issue(live, ca_name=ISSUING, profile_name="ss1sp-device", csr=_csr("ss1sp-device", identity),
                    csr_source="test:before", identity=identity, approved_by="bob").record  # fmt: skip
        with live.inventory.transaction() as db:
            db._execute("DELETE FROM csrs WHERE sha256 = ?", (old.csr_sha256,))
    finally:
        live.close()
    outcome = run(ws, FILE)
    steps = _steps(outcome.transcript)
    details = steps["affected.list"]["details"]
    assert (details["affected"], details["devices"], details["devices_without_recorded_csr"]) == (7, 5, 1)
    assert details["others"] == 1  # the organisation's certificate
    assert "not archived yet" not in str(details) and "1 without an archived CSR" in steps["affected.list"]["action"]
    affected = _rows(outcome.outputs["affected_certificates"])
    assert old.serial in {r["serial"] for r in affected}
    plan_path = outcome.outputs["recertification_plan"]
    plan = _rows(plan_path)
    assert plan_path.read_text().splitlines()[0] == "eui64,usage,csr,serial"
    assert old.serial not in {r["serial"] for r in plan} and len(plan) == 5
    assert made["device-ka"] in {r["serial"] for r in plan}
    live = Workspace.open(ws)
    try:
        for row in plan:
            cert = live.inventory.certificate(ISSUING, row["serial"])
            assert cert is not None and row["csr"] == f"recorded:{cert.csr_sha256}"
            assert (row["eui64"], row["usage"]) == (cert.eui64, cert.usage)
        create_ca(live, NEW_ISSUING, profile_name="ss1spca-issuing", common_name="S1SP Issuing B",
                  approved_by="alice", issuer_ca=ROOT)  # fmt: skip
    finally:
        live.close()
    argv = ["--workspace", str(ws), "issue", "--ca", NEW_ISSUING, "--profile", "ss1sp-device", "--devices",
            str(plan_path), "--approved-by", "bob", "--json"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    live = Workspace.open(ws)
    try:
        issuer = x509.load_der_x509_certificate(live.inventory.ca_certificate_der(NEW_ISSUING))
        for row in plan:
            before = live.inventory.certificate(ISSUING, row["serial"])
            (after,) = live.inventory.valid_certificates_of_device(NEW_ISSUING, row["eui64"], row["usage"])
            assert before is not None and after.csr_sha256 == before.csr_sha256
            new_cert = x509.load_der_x509_certificate(after.der)
            new_cert.verify_directly_issued_by(issuer)
            assert new_cert.public_key() == x509.load_der_x509_certificate(before.der).public_key()
        assert live.inventory.valid_certificates_of_device(NEW_ISSUING, BEFORE) == []
        assert len(live.inventory.valid_certificates_of_ca(NEW_ISSUING)) == 5
        assert {c.serial for c in live.inventory.certificates_of_batch(fleet.batch_id)} <= {r["serial"] for r in plan}
    finally:
        live.close()


def _refused(ws: Path, path: Path, *, approved: bool = False) -> str:
    if not approved:
        approve(ws, path)
    before = sorted(p.name for p in (ws / "transcripts").iterdir())
    with pytest.raises((ConfigError, StateError)) as err:
        procedures.run(path, ws)
    assert sorted(p.name for p in (ws / "transcripts").iterdir()) == before  # nothing written
    assert not (ws / "artifacts" / "compromise").exists()
    return err.value.message


def test_preflight_refuses_an_unknown_incident_another_kind_a_wrong_issuer_and_a_ca_already_revoked(
    tmp_path: Path,
) -> None:
    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "issuing-ca")
    files = tmp_path / "files"
    unknown = variant(files, "ca-revocation.yaml", {"incident": "INC-1999-001"}, as_name="a.yaml")
    message = _refused(ws, unknown)
    assert "incident: no incident 'INC-1999-001' in " in message
    assert message.endswith("incidents.yaml (known: INC-2026-007, INC-2026-012)")
    other = variant(files, "ca-revocation.yaml", {"incident": "INC-2026-007"}, as_name="c.yaml")
    assert "incident: INC-2026-007 is a 'other' incident; a CA is revoked for a key-compromise or " in _refused(
        ws, other)  # fmt: skip
    wrong = variant(files, "ca-revocation.yaml", {"ca": ROOT, "issuer": ISSUING}, as_name="d.yaml")
    assert "issuer: CA s1sp-root's certificate was issued by itself (a root), not by s1sp-issuing" in _refused(
        ws, wrong)  # fmt: skip
    # The register's CA, when it names one, must be the file's.
    (ws / "registers").mkdir()
    register = yaml.safe_load((CEREMONIES.parent / "registers" / "incidents.yaml").read_text())
    register["incidents"][1]["ca"] = "s1sp-other"
    (ws / "registers" / "incidents.yaml").write_text(yaml.safe_dump(register))
    assert "ca: incident INC-2026-012 is the compromise of CA s1sp-other, not s1sp-issuing" in _refused(ws, FILE)
    register["incidents"][1]["ca"] = ISSUING
    (ws / "registers" / "incidents.yaml").write_text(yaml.safe_dump(register))
    # Already revoked (here outside any ceremony): a CA's certificate is not revoked twice.
    live = Workspace.open(ws)
    serial = live.inventory.ca(ISSUING).serial
    revoke(live, ca_name=ROOT, serial=serial, reason="cACompromise", requested_by="bob", approved_by="alice")
    live.close()
    message = _refused(ws, FILE, approved=True)
    assert f"ca: CA s1sp-issuing's certificate (serial {serial}) is already revoked, cACompromise at " in message
    assert message.endswith("; it is not revoked twice")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reason": "superseded"}, "reason must be one of 'keyCompromise', 'cACompromise' (got 'superseded')"),
        (
            {"approved_by": "bob"},
            "approved_by: a revocation needs two people; requested_by and approved_by are both bob",
        ),
        ({"issuer": ISSUING}, "issuer: CA s1sp-issuing cannot sign the ARL that revokes its own certificate"),
        ({"participants.witnesses": []}, "participants.witnesses: a CA revocation needs at least one witness"),
        ({"incident": None}, "incident: Input should be a valid string (got None)"),
    ],
)
def test_the_model_names_the_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_ceremony(variant(tmp_path, "ca-revocation.yaml", change))
    assert message in err.value.message


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"approved_by": "carol"},
            "approved_by: carol is not registered for the approver role (registered: custodian)",
        ),
        ({"requested_by": "zed"}, "requested_by: 'zed' is not in the participant register"),
    ],
)
def test_preflight_checks_the_two_people(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    from ceremony.model.ceremony_file import preflight
    from ceremony.model.people import load_register
    from ceremony.model.policy import load_policy

    path = variant(tmp_path, "ca-revocation.yaml", change)
    with pytest.raises(ConfigError) as err:
        preflight(load_ceremony(path), load_register(CEREMONIES.parent / "people.yaml"), load_policy())
    assert message in err.value.message


def test_a_rehearsal_revokes_throwaway_cas_in_the_rehearsal_area_and_never_the_live_ones(
    tmp_path: Path, key_store_kind: str
) -> None:
    ws = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(ws, "issuing-ca")
    # The rehearsal area's token is another token configuration: it is used from a process of its own.
    rehearsed = in_child(procedures.run, FILE, ws, rehearsal=True)
    assert rehearsed.transcript == ws / "rehearsal" / "transcripts" / "ca-revocation-2026-12.jsonl"
    assert verify_transcript(rehearsed.transcript).ok
    entries = read_entries(rehearsed.transcript)
    assert entries[0]["rehearsal"] is True
    made = next(e for e in entries if e.get("step") == "rehearsal.token" and "throwaway CAs" in e["action"])
    assert made["action"].startswith("rehearsal: throwaway CAs 's1sp-root' and 's1sp-issuing' made")
    assert all(str(p).startswith(str(ws / "rehearsal")) for p in rehearsed.outputs.values())
    live = Workspace.open(ws)
    try:
        assert revocation(live.inventory, ROOT, live.inventory.ca(ISSUING).serial) is None
    finally:
        live.close()
    assert not (ws / "artifacts" / "crls").exists() and not (ws / "artifacts" / "compromise").exists()
    # A second rehearsal finds the area's CA revoked, and says how to rehearse again.
    again = variant(tmp_path / "files", "ca-revocation.yaml", {"ceremony_id": "ca-revocation-again", "outputs": {}})
    with pytest.raises(StateError, match="an earlier rehearsal: remove the rehearsal area to rehearse again"):
        in_child(procedures.run, again, ws, rehearsal=True)


def test_a_revoked_ca_issues_nothing_more(tmp_path: Path) -> None:
    from tests.support.csr_factory import good_device_csr

    ws = live_workspace(tmp_path / "ws", "software")
    run_examples(ws, "issuing-ca")
    run(ws, FILE)
    opened = Workspace.open(ws)
    try:
        with pytest.raises(StateError) as refused:
            identity = Identity(eui64="00DB123400000077", usage="ds")
            issue(opened, ca_name="s1sp-issuing", profile_name="ss1sp-device", csr=good_device_csr()[0],
                  csr_source="t", identity=identity, approved_by="bob")  # fmt: skip
    finally:
        opened.close()
    assert refused.value.message.startswith("CA s1sp-issuing's certificate was revoked (keyCompromise) on ")
    assert refused.value.message.endswith("its compromise is answered by re-certifying its devices under another CA")
