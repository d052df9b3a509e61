"""Evidence pack verification on a small hand-made pack: intact, changed, added, missing, and badly signed; its
RFC 3161 timestamp tokens (the manifest's, the seals') verified, and a token over other data failing it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ceremony.cli.main import main
from ceremony.compliance.pack import (
    MANIFEST,
    MANIFEST_TOKEN,
    REPORT_PDF,
    SIGNATURE,
    SIGNER,
    attachment_path,
    fingerprint_words,
    report_attachments_differ,
    verify_pack,
)
from ceremony.errors import InputError
from ceremony.keys.signatures import sign
from ceremony.procedures.attestation import key_fingerprint
from ceremony.record.manifest import file_list
from ceremony.record.timestamps import Authority, Stamp, load_chain, request_stamp
from ceremony.record.transcript import read_aloud, read_entries
from tests.support.pades import Officer, officer
from tests.support.tsa import LocalTsa, seal_transcript

Key = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _pem(key: Key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _seal(out: Path, key: Key, fields: dict[str, Any] | None = None) -> bytes:
    """What reporting/evidence.py does last: signer.pem, a manifest over every file (and ``fields``), its signature."""
    (out / SIGNER).write_bytes(_pem(key))
    files = file_list(out, skip=(MANIFEST, SIGNATURE))
    manifest = {"format": "s1spki-evidence-pack/1", "files": files, **(fields or {})}
    data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    return data


def _pack(out: Path, key: Key) -> bytes:
    (out / "findings").mkdir(parents=True)
    (out / "findings" / "findings.json").write_text('[{"id": "CER-02-a0f08c17"}]', encoding="utf-8")
    (out / "README.md").write_text("how to verify this pack\n", encoding="utf-8")
    return _seal(out, key)


@pytest.fixture(params=["ec-p256", "ed25519"])
def key(request: pytest.FixtureRequest) -> Key:
    return (
        ec.generate_private_key(ec.SECP256R1()) if request.param == "ec-p256" else ed25519.Ed25519PrivateKey.generate()
    )


@pytest.fixture
def pack(tmp_path: Path, key: Key) -> Path:
    _pack(tmp_path / "pack", key)
    return tmp_path / "pack"


def _trust(tmp_path: Path, key: Key) -> Path:
    path = tmp_path / "officer.pem"
    path.write_bytes(_pem(key))
    return path


def test_an_intact_pack_verifies_but_its_carried_key_is_not_established(pack: Path, key: Key) -> None:
    check = verify_pack(pack)
    data = (pack / MANIFEST).read_bytes()
    assert (check.ok, check.signer_established) == (True, False)
    assert check.signer_key == key_fingerprint(key.public_key())
    assert check.message == (
        f"intact: 3 files; signed by {check.signer_key}, which is NOT established: compare it with the officer's "
        "published fingerprint, or pass --trust"
    )
    assert check.words == fingerprint_words(data) == read_aloud(hashlib.sha256(data).digest())
    assert len(check.words.split()) == 8


def test_an_intact_pack_signed_by_the_trusted_key_is_established(tmp_path: Path, pack: Path, key: Key) -> None:
    check = verify_pack(pack, trust=_trust(tmp_path, key))
    assert (check.ok, check.signer_established) == (True, True)
    assert check.message == f"intact: 3 files; signed by the trusted key {key_fingerprint(key.public_key())}"


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda p: _flip_one_byte(p / "README.md"),
            "README.md: does not match the manifest (changed since it was signed)",
        ),
        (
            lambda p: (p / "README.md").write_text("how to verify this pack\n\n"),
            "README.md: does not match the manifest (changed since it was signed)",
        ),
        (
            lambda p: (p / "findings" / "extra.json").write_text("{}"),
            "findings/extra.json: not in the manifest (added after signing)",
        ),
        (
            lambda p: (p / "findings" / "findings.json").unlink(),
            "findings/findings.json: listed in the manifest but missing",
        ),
        (
            lambda p: (p / SIGNATURE).unlink(),
            "manifest.json.sig: the manifest's signature does not verify under signer.pem",
        ),
        (
            lambda p: _flip_one_byte(p / SIGNATURE),
            "manifest.json.sig: the manifest's signature does not verify under signer.pem",
        ),
        (lambda p: _flip_one_byte(p / SIGNER), "signer.pem: does not match the manifest (changed since it was signed)"),
    ],
    ids=[
        "changed-byte",
        "changed-size",
        "added-file",
        "missing-file",
        "no-signature",
        "bad-signature",
        "changed-signer",
    ],
)
def test_a_damaged_pack_is_refused_saying_what_is_wrong(pack: Path, damage: Any, message: str) -> None:
    damage(pack)
    check = verify_pack(pack)
    assert (check.ok, check.signer_established, check.message) == (False, False, message)


def test_a_manifest_changed_after_signing_does_not_verify(pack: Path) -> None:
    manifest = json.loads((pack / MANIFEST).read_bytes())
    manifest["format"] = "s1spki-evidence-pack/2"
    (pack / MANIFEST).write_bytes(json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n")
    check = verify_pack(pack)
    assert not check.ok
    assert check.message == "manifest.json.sig: the manifest's signature does not verify under signer.pem"


def test_a_pack_resealed_by_someone_else_is_caught_only_by_the_trusted_key(
    tmp_path: Path, pack: Path, key: Key
) -> None:
    (pack / "findings" / "findings.json").write_text("[]", encoding="utf-8")
    impostor = ec.generate_private_key(ec.SECP256R1())
    for name in (MANIFEST, SIGNATURE, SIGNER):
        (pack / name).unlink()
    _seal(pack, impostor)
    carried = verify_pack(pack)
    assert (carried.ok, carried.signer_established) == (True, False)
    assert carried.signer_key == key_fingerprint(impostor.public_key()) != key_fingerprint(key.public_key())
    trusted = verify_pack(pack, trust=_trust(tmp_path, key))
    assert (trusted.ok, trusted.signer_established) == (False, False)
    assert trusted.message == "manifest.json.sig: the manifest's signature does not verify under the trusted key"


def test_a_hostile_manifest_is_refused_before_any_file_is_read(pack: Path) -> None:
    (pack / MANIFEST).write_text(json.dumps({"files": [{"path": "../../etc/passwd", "sha256": "00", "size": 1}]}))
    check = verify_pack(pack)
    assert (check.ok, check.message) == (
        False,
        "manifest.json: lists '../../etc/passwd', which is outside its directory",
    )
    (pack / MANIFEST).write_bytes(b"\x00not json")
    assert verify_pack(pack).message == "manifest.json: not a manifest this tool reads"


def test_a_signer_file_that_is_no_key_is_said_so(tmp_path: Path, key: Key) -> None:
    out = tmp_path / "pack"
    out.mkdir()
    (out / "README.md").write_text("x", encoding="utf-8")
    (out / SIGNER).write_bytes(b"not a key\n")  # listed with its true hash: the manifest is intact
    data = json.dumps({"files": file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    assert verify_pack(out).message == "signer.pem: not a PEM public key"


def test_a_pack_without_signer_pem_needs_the_trusted_key(tmp_path: Path, key: Key) -> None:
    out = tmp_path / "pack"
    out.mkdir()
    (out / "README.md").write_text("x", encoding="utf-8")
    data = json.dumps({"files": file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    assert verify_pack(out).message == "manifest.json.sig: the manifest's signature does not verify under signer.pem"
    assert verify_pack(out, trust=_trust(tmp_path, key)).ok


def test_a_directory_without_a_manifest_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        verify_pack(tmp_path)
    assert err.value.message == f"{tmp_path}: not an evidence pack (no manifest.json)"


@pytest.mark.parametrize("content", [b"not a key", None], ids=["not-pem", "missing"])
def test_a_trust_file_that_is_no_public_key_is_an_input_error(
    tmp_path: Path, pack: Path, content: bytes | None
) -> None:
    trust = tmp_path / "trust.pem"
    if content is not None:
        trust.write_bytes(content)
    with pytest.raises(
        InputError, match=r"^--trust: .*trust\.pem is not a PEM public key \((ValueError|FileNotFoundError)\)$"
    ):
        verify_pack(pack, trust=trust)


def test_a_manifest_naming_an_impossible_path_is_refused_not_a_traceback(pack: Path) -> None:
    (pack / MANIFEST).write_text(json.dumps({"files": [{"path": "a" * 300, "sha256": "00" * 32, "size": 1}]}))
    check = verify_pack(pack)
    assert not check.ok and check.message.startswith("manifest.json: ")


def test_a_listed_file_reached_through_a_symlink_out_of_the_pack_is_refused(tmp_path: Path, key: Key) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "findings.json").write_text("[]", encoding="utf-8")
    out = tmp_path / "pack"
    out.mkdir()
    (out / "elsewhere").symlink_to(outside, target_is_directory=True)
    (out / SIGNER).write_bytes(_pem(key))
    files = [{"path": "elsewhere/findings.json", "sha256": hashlib.sha256(b"[]").hexdigest(), "size": 2}]
    data = json.dumps({"files": files + file_list(out)}).encode()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_bytes(sign(key, data))
    check = verify_pack(out)
    assert not check.ok and check.message.startswith("elsewhere: a symbolic link in the pack"), check.message


# --- the files report.pdf carries (PDF/A-3 associated files) -----------------------------------------------------
CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _report(path: Path, attachments: dict[str, bytes]) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    for name, data in attachments.items():
        writer.add_attachment(name, data)
    with path.open("wb") as fh:
        writer.write(fh)


def _report_pack(
    out: Path, key: Key, attachments: dict[str, bytes] | None = None, officer: Officer | None = None
) -> Path:
    """A pack whose report.pdf carries its findings, its index and its one CA certificate (``attachments``: others),
    signed by ``officer`` (with their certificate and the register naming them, as reporting/evidence.py packs it)."""
    (out / "artifacts" / "cas").mkdir(parents=True)
    (out / "findings.json").write_text('{"findings": []}')
    (out / "evidence-index.json").write_text('{"files": []}')
    (out / "artifacts" / "cas" / "s1sp-root.pem").write_bytes(CA_PEM)
    carried = {"findings.json": b'{"findings": []}', "evidence-index.json": b'{"files": []}', "s1sp-root.pem": CA_PEM}
    _report(out / REPORT_PDF, carried if attachments is None else attachments)
    if officer is None:
        _seal(out, key)
        return out
    from ceremony.compliance.pdf_signature import SIGNER_CERTIFICATE, certificate_key
    from ceremony.reporting.signature import sign_report
    from tests.support.pades import SIGNED

    report = sign_report((out / REPORT_PDF).read_bytes(), officer.signer, at=SIGNED, authority=None, reason="test")
    (out / REPORT_PDF).write_bytes(report.data)
    (out / SIGNER_CERTIFICATE).write_bytes(officer.certificate.public_bytes(serialization.Encoding.PEM))
    fingerprint = certificate_key(officer.certificate)
    (out / "registers").mkdir()
    (out / "registers" / "people.yaml").write_text(
        "schema_version: 1\npeople:\n  victor:\n    name: Victor Example\n    organisation: DCC\n"
        "    roles: [compliance-officer]\n    vetting_expires: '2027-12-31'\n    training_expires: '2027-12-31'\n"
        f"    attestation_key: '{fingerprint}'\n"
    )
    _seal(out, key, {"created": SIGNED.isoformat(), "signer": {"person": "victor", "key": fingerprint}})
    return out


def test_the_files_a_report_carries_are_the_packs_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victor = officer()
    pack = _report_pack(tmp_path / "pack", victor.key._key, officer=victor)  # type: ignore[arg-type]
    assert report_attachments_differ(pack) is None
    trust = _trust(tmp_path, victor.key._key)  # type: ignore[arg-type]
    check = verify_pack(pack, trust)
    said = (
        "report.pdf: PAdES B-B signature intact, by Victor Example (victor), compliance officer (not timestamped; "
        "validated at the pack's creation, 2026-12-01T10:00:00Z)"
    )
    assert check.ok and check.report_signature == said, check
    assert main(["evidence", "verify", str(pack), "--trust", str(trust)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == said  # under the pack's own verdict
    assert attachment_path("s1sp-root.pem") == "artifacts/cas/s1sp-root.pem"
    assert attachment_path("findings.json") == "findings.json"


@pytest.mark.parametrize(
    ("carried", "message"),
    [
        ({"findings.json": b'{"findings": ["forged"]}', "evidence-index.json": b'{"files": []}',
          "s1sp-root.pem": CA_PEM}, "report.pdf: its attachment findings.json is not the pack's findings.json"),
        ({"findings.json": b'{"findings": []}', "evidence-index.json": b'{"files": []}'},
         "report.pdf: does not carry s1sp-root.pem"),
        ({"findings.json": b'{"findings": []}', "evidence-index.json": b'{"files": []}', "s1sp-root.pem": CA_PEM,
          "other.pem": CA_PEM}, "report.pdf: carries 'other.pem', which is not a file of the pack "
                                "(artifacts/cas/other.pem)"),
        ({"s1sp-root.pem": CA_PEM}, "report.pdf: does not carry findings.json, evidence-index.json"),
    ],
    ids=["changed", "a-ca-left-out", "a-stranger", "no-findings"],
)  # fmt: skip
def test_a_signed_pack_whose_report_carries_other_files_fails(
    tmp_path: Path, key: Key, carried: dict[str, bytes], message: str
) -> None:
    pack = _report_pack(tmp_path / "pack", key, carried)
    check = verify_pack(pack, _trust(tmp_path, key))  # every hash matches: the signer signed a report that lies
    assert (check.ok, check.message) == (False, message)


def test_a_report_that_is_no_pdf_is_named(tmp_path: Path, key: Key) -> None:
    pack = _report_pack(tmp_path / "pack", key)
    (pack / REPORT_PDF).write_bytes(b"%PDF-1.7\nnot really\n")
    _seal(pack, key)
    check = verify_pack(pack, _trust(tmp_path, key))
    assert not check.ok and check.message.startswith("report.pdf: its attachments cannot be read ("), check.message


# --- RFC 3161 timestamps (a test TSA on 127.0.0.1, tests/support/tsa.py) ---------------------------------------
def _timestamped_pack(out: Path, tsa: LocalTsa, officer: Key) -> Path:
    """A pack as reporting/evidence.py builds one for a workspace naming a TSA: the TSA chain and a transcript with
    its seal token listed in the manifest, and manifest.json.tsr (the manifest's token) outside it."""
    from ceremony.record.timestamps import PACK_CHAIN

    authority = Authority(tsa.url, load_chain(tsa.tsa.chain), 5.0)
    out.mkdir(parents=True)
    (out / "README.md").write_text("how to verify this pack\n", encoding="utf-8")
    (out / "timestamping").mkdir()
    (out / PACK_CHAIN).write_bytes(tsa.tsa.chain.read_bytes())
    transcript = seal_transcript(out / "transcripts" / "root-ca-2026-12.jsonl")
    stamp = request_stamp(authority, bytes.fromhex(read_entries(transcript)[-1]["hash"]))
    assert isinstance(stamp, Stamp)
    transcript.with_suffix(".seal.tsr").write_bytes(stamp.token)
    transcript.with_suffix(".jsonl.lock").unlink()  # a pack carries no lock file
    data = _seal(out, officer)
    manifest_stamp = request_stamp(authority, data)
    assert isinstance(manifest_stamp, Stamp)
    (out / MANIFEST_TOKEN).write_bytes(manifest_stamp.token)
    return out


OFFICER = ec.generate_private_key(ec.SECP256R1())


def test_a_timestamped_pack_verifies_its_manifest_and_seal_tokens(tmp_path: Path, tsa: LocalTsa) -> None:
    pack = _timestamped_pack(tmp_path / "pack", tsa, OFFICER)
    check = verify_pack(pack, _trust(tmp_path, OFFICER))
    assert check.ok and check.signer_established, check.message
    assert check.message.startswith("intact: 6 files;")  # manifest.json.tsr is not one of them, nor added
    assert check.timestamps[0].startswith("manifest.json: timestamped by Test TSA at ")
    assert check.timestamps[1:] == ("1 transcript seals and 0 journal checkpoints timestamped by Test TSA; every "
                                    "token verifies",)  # fmt: skip
    # openssl agrees, as the pack's README says
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", MANIFEST, "-in", MANIFEST_TOKEN, "-CAfile", "timestamping/tsa-chain.pem"],
        cwd=pack, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "Verification: OK\n")


def test_a_manifest_token_over_other_data_fails_the_pack(tmp_path: Path, tsa: LocalTsa) -> None:
    pack = _timestamped_pack(tmp_path / "pack", tsa, OFFICER)
    trust = _trust(tmp_path, OFFICER)
    seal_token = (pack / "transcripts" / "root-ca-2026-12.seal.tsr").read_bytes()
    manifest_token = (pack / MANIFEST_TOKEN).read_bytes()
    over_other_data = "it is over other data (its message imprint is not that of what it stamps)"
    # another genuine token of the same TSA (the transcript's seal) in the manifest token's place
    (pack / MANIFEST_TOKEN).write_bytes(seal_token)
    check = verify_pack(pack, trust)
    assert (check.ok, check.message) == (False, f"manifest.json.tsr: {over_other_data}")
    # a manifest changed after its timestamp and signed again by the officer's key: the token still names the old one
    (pack / MANIFEST_TOKEN).write_bytes(manifest_token)
    manifest = json.loads((pack / MANIFEST).read_bytes())
    manifest["format"] = "s1spki-evidence-pack/1 (re-signed)"
    data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    (pack / MANIFEST).write_bytes(data)
    (pack / SIGNATURE).write_bytes(sign(OFFICER, data))
    check = verify_pack(pack, trust)
    assert (check.ok, check.message) == (False, f"manifest.json.tsr: {over_other_data}")
    assert main(["evidence", "verify", str(pack), "--trust", str(trust)]) == 1


def test_a_seal_token_over_another_seal_fails_the_pack_naming_it(tmp_path: Path, tsa: LocalTsa) -> None:
    pack = _timestamped_pack(tmp_path / "pack", tsa, OFFICER)
    manifest_token = (pack / MANIFEST_TOKEN).read_bytes()
    for name in (MANIFEST, SIGNATURE, SIGNER, MANIFEST_TOKEN):
        (pack / name).unlink()
    (pack / "transcripts" / "root-ca-2026-12.seal.tsr").write_bytes(manifest_token)  # a token over other data
    _seal(pack, OFFICER)
    check = verify_pack(pack, _trust(tmp_path, OFFICER))
    assert (check.ok, check.message) == (
        False,
        "transcripts/root-ca-2026-12.seal.tsr: it is over other data (its message imprint is not that of what it "
        "stamps)",
    )


def test_a_pack_built_while_the_tsa_was_out_of_reach_says_so_and_verifies(
    tmp_path: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _timestamped_pack(tmp_path / "pack", tsa, OFFICER)
    (pack / MANIFEST_TOKEN).unlink()
    trust = _trust(tmp_path, OFFICER)
    assert main(["evidence", "verify", str(pack), "--trust", str(trust)]) == 0
    assert "manifest.json: not timestamped (no manifest.json.tsr: the TSA was out of reach at the build)\n" in (
        capsys.readouterr().out
    )
    from ceremony.record.timestamps import PACK_CHAIN

    (pack / PACK_CHAIN).unlink()  # a token, but no chain to check it under
    for name in (MANIFEST, SIGNATURE, SIGNER):
        (pack / name).unlink()
    _seal(pack, OFFICER)
    check = verify_pack(pack, trust)
    assert (check.ok, check.message) == (
        False,
        "transcripts/root-ca-2026-12.seal.tsr: a timestamp token, but the pack carries no TSA chain "
        "(timestamping/tsa-chain.pem)",
    )


def test_a_pack_of_a_workspace_naming_no_tsa_says_nothing_of_timestamps(pack: Path) -> None:
    assert verify_pack(pack).timestamps == ()
