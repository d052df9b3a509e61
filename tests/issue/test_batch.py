"""Batch issuance: the DER template against the builder, rejects, re-keys, workers, and resuming after SIGKILL."""

from __future__ import annotations

import csv
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ceremony.cli.main import main
from ceremony.errors import InputError
from ceremony.issue import batch as batch_module
from ceremony.issue.batch import issue_batch, read_device_list
from ceremony.issue.revocation import revoke
from ceremony.issue.single import create_ca
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Issuer, key_identifier
from ceremony.model.template import TbsTemplate, new_serial
from ceremony.record import batches
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import device_list
from tests.support.openssl import openssl_verify
from tests.support.postgres import ENGINES

REPO = Path(__file__).resolve().parents[2]


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@pytest.mark.parametrize("usage", ["ds", "ka"])
def test_the_filled_template_is_the_builders_certificate_byte_for_byte(usage: str) -> None:
    profile = get_profile("ss1sp-device", {})
    ca = ec.generate_private_key(ec.SECP256R1())
    issuer = Issuer(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Issuing")]),
        key_identifier(ca.public_key()),
        datetime(2040, 1, 1, tzinfo=timezone.utc),
    )
    template = TbsTemplate.build(profile, issuer, usage)  # type: ignore[arg-type]
    rng = random.Random(7)
    start = datetime(2026, 11, 24, tzinfo=timezone.utc)
    for _ in range(200):
        when = start + timedelta(seconds=rng.randrange(0, 20 * 365 * 86400))
        eui64 = bytes(rng.randrange(256) for _ in range(8))
        # prove() raises unless the template and cryptography's builder give identical TBS bytes.
        template.prove(
            profile, issuer, usage, new_serial(), when, _point(ec.generate_private_key(ec.SECP256R1())), eui64
        )  # type: ignore[arg-type]


def test_a_profile_that_is_not_device_shaped_gets_no_template() -> None:
    profile = get_profile("ss1sp-organisation", {})
    ca = ec.generate_private_key(ec.SECP256R1())
    issuer = Issuer(x509.Name([]), key_identifier(ca.public_key()), datetime(2040, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(InputError, match="is not a device profile"):
        TbsTemplate.build(profile, issuer, "ds")


def _csr(key: ec.EllipticCurvePrivateKey, subject: x509.Name | None = None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _bundle_certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _check_archive(ws: Workspace, batch_id: str) -> None:
    """Every certificate of the batch has its CSR in the archive, intact, and its key is the CSR's."""
    rows = ws.inventory._execute(
        "SELECT c.csr_sha256, c.der, a.der FROM certificates c LEFT JOIN csrs a ON a.sha256 = c.csr_sha256 "
        "WHERE c.batch_id = ?",
        (batch_id,),
    ).fetchall()
    for digest, cert, csr in rows:
        assert csr is not None, f"the CSR {digest} of a certificate of {batch_id} is not archived"
        assert hashlib.sha256(bytes(csr)).hexdigest() == digest
        public = x509.load_der_x509_certificate(bytes(cert)).public_key()
        assert x509.load_der_x509_csr(bytes(csr)).public_key() == public


def _check_batch(ws: Workspace, batch_id: str, expected: int) -> list[x509.Certificate]:
    """Inventory and bundle agree; no duplicate serial or identity; every certificate verifies and is clean, and its
    CSR is in the archive."""
    rows = ws.inventory._execute(
        "SELECT serial, eui64, usage, der FROM certificates WHERE batch_id = ?", (batch_id,)
    ).fetchall()
    assert len(rows) == expected
    _check_archive(ws, batch_id)
    assert len({r[0] for r in rows}) == expected and len({(r[1], r[2]) for r in rows}) == expected
    bundle = ws.root / f"artifacts/batches/{batch_id}.pem"
    certs = _bundle_certificates(bundle)
    assert sorted(c.public_bytes(serialization.Encoding.DER) for c in certs) == sorted(bytes(r[3]) for r in rows)
    issuer = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der("issuing"))
    profile = get_profile("ss1sp-device", ws.config.oids)
    for cert in certs:
        cert.verify_directly_issued_by(issuer)
    for cert in certs[:5] + certs[-5:]:
        assert failing(check_certificate(cert.public_bytes(serialization.Encoding.DER), profile, issuer=issuer)) == []
    return certs


def test_a_batch_issues_every_row_once_and_records_it(ca_workspace: Workspace, tmp_path: Path) -> None:
    devices = device_list(tmp_path / "list", 20, pem=True)
    result = issue_batch(
        ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
        progress=False, chunk=7,
    )  # fmt: skip
    assert (result.requested, result.issued_now, result.issued_before, result.rejected) == (40, 40, 0, [])
    certs = _check_batch(ca_workspace, result.batch_id, 40)
    assert {c.extensions.get_extension_for_class(x509.KeyUsage).value.key_agreement for c in certs} == {True, False}
    journal = ca_workspace.journal.entries()
    start, done, checkpoint = journal[-3:]
    assert checkpoint["event"] == "journal.checkpoint" and checkpoint["head"] == done["hash"]
    assert checkpoint["reason"] == f"batch {result.batch_id} completed"
    assert start["event"] == "batch.start" and start["list_sha256"] == read_device_list(devices).sha256
    assert start["approved_by"] == "bob" and start["requested"] == 40
    assert done["event"] == "batch.complete" and done["count"] == 40 and done["serials_sha256"] == result.serials_sha256
    assert done["outputs"] == {f"artifacts/batches/{result.batch_id}.pem": result.bundle_sha256}
    # Running the same command again changes nothing: the batch is complete.
    again = issue_batch(
        ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob", progress=False
    )
    assert (again.batch_id, again.issued_now, again.issued_before) == (result.batch_id, 0, 40)
    assert ca_workspace.journal.entries()[-1] == checkpoint  # nothing new to anchor either


def test_a_batch_archives_each_csr_as_der_with_its_chunk(ca_workspace: Workspace, tmp_path: Path) -> None:
    devices = device_list(tmp_path / "list", 5, pem=True)
    result = issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices,
                         approved_by="bob", progress=False, chunk=3)  # fmt: skip
    _check_batch(ca_workspace, result.batch_id, 10)
    for line in devices.read_text().splitlines()[1:]:
        eui64, usage, name = line.split(",")
        der = x509.load_pem_x509_csr((devices.parent / name).read_bytes()).public_bytes(serialization.Encoding.DER)
        digest = hashlib.sha256(der).hexdigest()
        assert ca_workspace.inventory.archived_csr(digest) == der
        assert ca_workspace.inventory.recorded_csrs([(eui64, usage, digest)]) == [der]
    assert ca_workspace.inventory._execute("SELECT COUNT(*) FROM csrs").scalar_one() == 10


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_resumed_batch_archives_what_it_commits_and_nothing_else(
    ca_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """A run that dies after its first chunk is committed (here: its second commit fails) leaves the archive
    holding exactly that chunk's CSRs; the run that resumes archives the rest with the rest."""
    devices = device_list(tmp_path / "list", 5)
    kw = {"ca_name": "issuing", "profile_name": "ss1sp-device", "devices": devices, "approved_by": "bob",
          "progress": False, "chunk": 4, "jobs": jobs}  # fmt: skip
    real = batches.record_signed
    calls: list[int] = []

    def dies_on_the_second(db: object, rows: list[object], **options: object) -> None:
        calls.append(len(rows))
        real(db, rows, **options)  # type: ignore[arg-type]
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill would, after the rows went in and before the commit

    monkeypatch.setattr(batch_module.batches, "record_signed", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        issue_batch(ca_workspace, **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(batch_module.batches, "record_signed", real)
    inventory = ca_workspace.inventory
    assert inventory._execute("SELECT COUNT(*) FROM certificates WHERE batch_id IS NOT NULL").scalar_one() == 4
    archived = {r[0] for r in inventory._execute("SELECT sha256 FROM csrs")}
    recorded = {r[0] for r in inventory._execute("SELECT csr_sha256 FROM certificates WHERE batch_id IS NOT NULL")}
    assert archived == recorded and len(archived) == 4
    again = issue_batch(ca_workspace, **kw)  # type: ignore[arg-type]
    assert (again.issued_before, again.issued_now) == (4, 6)
    _check_batch(ca_workspace, again.batch_id, 10)
    assert inventory._execute("SELECT COUNT(*) FROM csrs").scalar_one() == 10


def _recorded(ws: Workspace, eui64: str, usage: str) -> str:
    """The recorded: cell of the CSR ``eui64``'s ``usage`` certificate was issued from."""
    (record,) = ws.inventory.valid_certificates_of_device("issuing", eui64, usage)
    return f"recorded:{record.csr_sha256}"


def test_recorded_csrs_re_certify_their_own_identities_under_another_ca_and_no_other(
    ca_workspace: Workspace, tmp_path: Path
) -> None:
    ws = ca_workspace
    first = issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", devices=device_list(tmp_path / "a", 3),
                        approved_by="bob", progress=False)  # fmt: skip
    create_ca(ws, "issuing-2", profile_name="ss1spca-issuing", common_name="Test Issuing 2", approved_by="alice",
              issuer_ca="root")  # fmt: skip
    one, two, three = (f"{0x00DB123400000000 + n:016X}" for n in (1, 2, 3))
    (revoked,) = ws.inventory.valid_certificates_of_device("issuing", three, "ka")
    revoke(ws, ca_name="issuing", serial=revoked.serial, reason="keyCompromise", requested_by="bob",
           approved_by="alice")  # fmt: skip
    rows = [
        f"{one},ds,{_recorded(ws, one, 'ds')},first",
        f"{one.lower()},ka,{_recorded(ws, one, 'ka')},",
        f"{two},ds,{_recorded(ws, one, 'ds')},another device's CSR",
        f"{two},ka,{_recorded(ws, two, 'ds')},the same device's other usage",
        f"{three},ds,recorded:{'ab' * 32},never archived",
        f"{three},ka,recorded:{revoked.csr_sha256},revoked for keyCompromise",
    ]
    plan = tmp_path / "plan" / "devices.csv"
    plan.parent.mkdir()
    plan.write_text("eui64,usage,csr,note\n" + "\n".join(rows) + "\n")
    lines: list[str] = []
    rejects = tmp_path / "rejects.csv"
    result = issue_batch(ws, ca_name="issuing-2", profile_name="ss1sp-device", devices=plan, approved_by="bob",
                         progress=False, skip_rejected=rejects, say=lines.append)  # fmt: skip
    assert (result.requested, result.issued_now) == (6, 2)
    assert [line.split(": ", 1)[1] for line in lines] == [
        f"this CSR was not recorded for EUI-64 {two} ds (a recorded CSR serves only the identity it was recorded for)",
        f"this CSR was not recorded for EUI-64 {two} ka (a recorded CSR serves only the identity it was recorded for)",
        "no CSR with this SHA-256 is in the inventory's archive",
        "a certificate from this CSR was revoked for keyCompromise; its key is not certified again",
    ]
    with rejects.open() as fh:
        assert [r["row"] for r in csv.DictReader(fh)] == ["4", "5", "6", "7"]
    # The new certificates are the old keys' under the other CA, with the same CSR on record.
    for usage in ("ds", "ka"):
        (old,) = ws.inventory.valid_certificates_of_device("issuing", one, usage)
        (new,) = ws.inventory.valid_certificates_of_device("issuing-2", one, usage)
        assert new.csr_sha256 == old.csr_sha256 and new.batch_id == result.batch_id != first.batch_id
        old_key = x509.load_der_x509_certificate(old.der).public_key()
        assert x509.load_der_x509_certificate(new.der).public_key() == old_key
    _check_batch_under(ws, result.batch_id, "issuing-2", 2)


def _check_batch_under(ws: Workspace, batch_id: str, ca: str, expected: int) -> None:
    """A batch of another CA than ``issuing``: its certificates verify under it, and their CSRs are archived."""
    issuer = x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(ca))
    certs = ws.inventory.certificates_of_batch(batch_id)
    assert len(certs) == expected
    for record in certs:
        x509.load_der_x509_certificate(record.der).verify_directly_issued_by(issuer)
    _check_archive(ws, batch_id)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_batch_certificates_verify_with_openssl(ca_workspace: Workspace, tmp_path: Path) -> None:
    devices = device_list(tmp_path / "list", 3)
    result = issue_batch(
        ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob", progress=False
    )
    assert result.bundle is not None
    chain = tmp_path / "chain.pem"
    chain.write_bytes(b"".join((ca_workspace.root / f"artifacts/cas/{n}.pem").read_bytes() for n in ("issuing",)))
    root = ca_workspace.root / "artifacts/cas/root.pem"
    for i, cert in enumerate(_bundle_certificates(result.bundle)):
        leaf = tmp_path / f"leaf{i}.pem"
        leaf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        proc = openssl_verify("-x509_strict", "-CAfile", str(root), "-untrusted", str(chain), str(leaf))
        assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), proc.stderr


def _bad_list(directory: Path) -> Path:
    good = device_list(directory, 2)
    csr_dir = directory / "csr"
    wrong_key = ec.generate_private_key(ec.SECP384R1())
    (csr_dir / "p384.der").write_bytes(_csr(wrong_key))  # type: ignore[arg-type]
    (csr_dir / "named.der").write_bytes(
        _csr(ec.generate_private_key(ec.SECP256R1()), x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "m")]))
    )
    tampered = bytearray(_csr(ec.generate_private_key(ec.SECP256R1())))
    tampered[-5] ^= 0x01
    (csr_dir / "tampered.der").write_bytes(bytes(tampered))
    (csr_dir / "junk.der").write_bytes(b"\x30\x03\x02\x01\x00")
    extra = [
        "00DB12340000000Z,ds,csr/p384.der",
        "00DB1234000000AA,dx,csr/p384.der",
        "00DB1234000000AB,ds,csr/missing.der",
        "00DB1234000000AC,ds,csr/p384.der",
        "00DB1234000000AD,ds,csr/named.der",
        "00DB1234000000AE,ds,csr/tampered.der",
        "00DB1234000000AF,ds,csr/junk.der",
        "00db123400000001,ds,csr/p384.der",  # the same identity as row 2 (case does not matter)
    ]
    good.write_text(good.read_text() + "\n".join(extra) + "\n")
    return good


REJECTS = [
    "row 6 (00DB12340000000Z ds, csr/p384.der): EUI-64 must be 16 hex digits",
    "row 7 (00DB1234000000AA dx, csr/p384.der): usage must be ds or ka",
    "row 8 (00DB1234000000AB ds, csr/missing.der): cannot read CSR (No such file or directory)",
    "row 9 (00DB1234000000AC ds, csr/p384.der): CSR key is not an uncompressed P-256 point",
    "row 10 (00DB1234000000AD ds, csr/named.der): a device CSR must have an empty subject "
    "(the identity comes from the device list)",
    "row 11 (00DB1234000000AE ds, csr/tampered.der): CSR signature does not verify (no proof of possession)",
    "row 12 (00DB1234000000AF ds, csr/junk.der): CSR is not well-formed DER",
    "row 13 (00db123400000001 ds, csr/p384.der): CSR key is not an uncompressed P-256 point",
]


def test_a_batch_with_rejects_issues_nothing_and_names_every_row(
    ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = _bad_list(tmp_path / "list")
    ca_workspace.close()
    base = ["--workspace", str(ca_workspace.root), "issue", "--ca", "issuing", "--profile", "ss1sp-device"]
    assert main([*base, "--devices", str(devices), "--approved-by", "bob"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:-1] == [f"reject {line}" for line in REJECTS]
    assert err[-1] == (
        "ceremony: 8 of 12 rows rejected; nothing issued (fix the list, or --skip-rejected FILE to issue the rest)"
    )
    ws = Workspace.open(ca_workspace.root)
    assert ws.inventory._execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
    assert ws.journal.entries()[-1]["event"] == "ca.create"
    ws.close()
    rejects = tmp_path / "rejects.csv"
    assert main([*base, "--devices", str(devices), "--approved-by", "bob", "--skip-rejected", str(rejects)]) == 0
    capsys.readouterr()
    with rejects.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["row"] for r in rows] == [str(n) for n in range(6, 14)]
    ws = Workspace.open(ca_workspace.root)
    assert ws.inventory._execute("SELECT COUNT(*) FROM certificates WHERE batch_id IS NOT NULL").fetchone()[0] == 4
    ws.close()


def test_a_second_valid_certificate_for_an_identity_needs_a_rekey(ca_workspace: Workspace, tmp_path: Path) -> None:
    first = device_list(tmp_path / "one", 2)
    issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=first, approved_by="bob",
                progress=False)  # fmt: skip
    second = device_list(tmp_path / "two", 2)  # same EUI-64s, new keys
    lines: list[str] = []
    with pytest.raises(InputError, match="4 of 4 rows rejected"):
        issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=second, approved_by="bob",
                    progress=False, say=lines.append)  # fmt: skip
    assert all("already has a valid certificate from this CA" in line for line in lines)
    result = issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=second,
                         approved_by="bob", progress=False, rekey=True)  # fmt: skip
    assert result.issued_now == 4


@pytest.mark.slow
def test_two_workers_issue_the_same_as_one(ca_workspace: Workspace, tmp_path: Path) -> None:
    devices = device_list(tmp_path / "list", 60)
    result = issue_batch(
        ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob",
        progress=False, jobs=2, chunk=16,
    )  # fmt: skip
    assert result.issued_now == 120
    _check_batch(ca_workspace, result.batch_id, 120)


_RUNNER = """
import sys
from pathlib import Path
from ceremony.issue.batch import issue_batch
from ceremony.record.workspace import Workspace
ws = Workspace.open(Path(sys.argv[1]))
r = issue_batch(ws, ca_name="issuing", profile_name="ss1sp-device", devices=Path(sys.argv[2]), approved_by="bob",
                progress=False, chunk=int(sys.argv[3]), jobs=int(sys.argv[4]))
print(r.batch_id, r.issued_now, r.issued_before)
"""


@pytest.mark.parametrize("database", ENGINES, indirect=True)
def test_concurrent_issuers_never_duplicate_a_serial(ca_workspace: Workspace, tmp_path: Path) -> None:
    """Three processes issue three batches into one workspace at once (small chunks, so their
    transactions interleave): every certificate is there once, no serial twice, each batch complete."""
    ca_workspace.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lists = [device_list(tmp_path / f"list{n}", 40, first=1 + 100 * n) for n in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUNNER, str(ca_workspace.root), str(devices), "8", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for devices in lists
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    ws = Workspace.open(ca_workspace.root)
    for out, _ in outputs:
        batch_id, issued_now, _before = out.split()
        assert issued_now == "80"
        _check_batch(ws, batch_id, 80)
    serials = ws.inventory._execute("SELECT serial FROM certificates WHERE issuer_ca = 'issuing'").fetchall()
    assert len(serials) == len({s[0] for s in serials}) == 240  # the issuing CA's own certificate is under root
    complete = ws.inventory._execute("SELECT COUNT(*) FROM batches WHERE status = 'complete'").scalar_one()
    assert complete == 3
    ws.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 device CSRs (5,000 devices), shared read-only by the kill tests."""
    return device_list(tmp_path_factory.mktemp("fleet"), 5000)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_killed_batch_resumes_to_exactly_the_expected_set(ca_workspace: Workspace, fleet: Path, jobs: int) -> None:
    """SIGKILL during validation, then twice during issuance after a random number of committed
    certificates, then let it finish: exactly the expected set, once each, inventory and bundle agreeing."""
    devices = fleet
    ca_workspace.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", _RUNNER, str(ca_workspace.root), str(devices), "256", str(jobs)]
    rng = random.Random(1234 + jobs)
    db = sqlite3.connect(f"file:{ca_workspace.root / 'inventory.sqlite'}?mode=ro", uri=True)

    def issued() -> int:
        return int(db.execute("SELECT COUNT(*) FROM certificates WHERE batch_id IS NOT NULL").fetchone()[0])

    kills = 0
    plan = [("after seconds", 0.7), ("after certificates", rng.randint(300, 4000)), ("after certificates", 0)]
    for how, when in plan:
        if how == "after certificates" and when == 0:
            when = rng.randint(issued() + 300, 9500)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        started = time.monotonic()
        while proc.poll() is None and (
            time.monotonic() - started < when if how == "after seconds" else issued() < when
        ):
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too
            kills += 1
        proc.communicate()
    db.close()
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    batch_id, _now, _before = finished.stdout.split()
    assert kills == 3, "every kill should land mid-batch"
    ws = Workspace.open(ca_workspace.root)
    _check_batch(ws, batch_id, 10000)
    assert not list((ws.root / "artifacts/batches").glob("*.partial"))
    events = [e["event"] for e in ws.journal.entries() if e.get("batch_id") == batch_id]
    assert events[0] == "batch.start" and events[-1] == "batch.complete" and events.count("batch.complete") == 1
    ws.close()


def test_a_run_killed_after_writing_the_bundle_finishes_the_batch(ca_workspace: Workspace, tmp_path: Path) -> None:
    devices = device_list(tmp_path / "list", 3)
    kw = {"ca_name": "issuing", "profile_name": "ss1sp-device", "devices": devices, "approved_by": "bob"}
    result = issue_batch(ca_workspace, progress=False, **kw)  # type: ignore[arg-type]
    assert result.bundle is not None
    written = result.bundle.read_bytes()
    # As if killed after the rename but before the batch was closed, with a stale partial file left too.
    with ca_workspace.inventory.transaction() as db:
        db._execute("UPDATE batches SET status = 'open', bundle = NULL WHERE batch_id = ?", (result.batch_id,))
    result.bundle.with_name(result.bundle.name + ".partial").write_bytes(b"half")
    again = issue_batch(ca_workspace, progress=False, **kw)  # type: ignore[arg-type]
    assert (again.issued_now, again.issued_before, again.bundle) == (0, 6, result.bundle)
    assert result.bundle.read_bytes() == written and not list(result.bundle.parent.glob("*.partial"))
    events = [e["event"] for e in ca_workspace.journal.entries() if e.get("batch_id") == result.batch_id]
    assert events == ["batch.start", "batch.complete", "batch.resume", "batch.complete"]


def test_inventory_exports_a_selection_as_csv_or_pem(
    ca_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = device_list(tmp_path / "list", 4)
    result = issue_batch(
        ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices, approved_by="bob", progress=False
    )
    ca_workspace.close()
    base = ["--workspace", str(ca_workspace.root), "inventory", "export"]
    pem = tmp_path / "batch.pem"
    assert main([*base, "--format", "pem", "--batch", result.batch_id, "--out", str(pem)]) == 0
    assert result.bundle is not None
    assert sorted(pem.read_bytes().split(b"-----END CERTIFICATE-----\n")) == sorted(
        result.bundle.read_bytes().split(b"-----END CERTIFICATE-----\n")
    )
    rows = tmp_path / "one.csv"
    assert main([*base, "--format", "csv", "--eui64", "00db123400000002", "--out", str(rows)]) == 0
    with rows.open() as fh:
        assert [(r["eui64"], r["usage"]) for r in csv.DictReader(fh)] in (
            [("00DB123400000002", "ds"), ("00DB123400000002", "ka")],
            [("00DB123400000002", "ka"), ("00DB123400000002", "ds")],
        )
    assert capsys.readouterr().out.splitlines()[-1] == f"2 certificates -> {rows}"


@pytest.mark.parametrize("key_store_kind", ["software"])
def test_a_batch_checks_the_approver_against_the_workspaces_register(ca_workspace: Workspace, tmp_path: Path) -> None:
    """The API (what notebook 30 calls) refuses as the CLI does: the approver must be a registered RA officer."""
    devices = device_list(tmp_path / "fleet", 1)
    before = ca_workspace.journal_path.read_bytes()
    with pytest.raises(InputError) as err:
        issue_batch(ca_workspace, ca_name="issuing", profile_name="ss1sp-device", devices=devices,
                    approved_by="ghost", progress=False)  # fmt: skip
    assert (
        err.value.message == "--approved-by: 'ghost' is not in the participant register (the ra-officer role is needed)"
    )
    assert ca_workspace.journal_path.read_bytes() == before and not list(ca_workspace.root.glob("artifacts/batches/*"))
