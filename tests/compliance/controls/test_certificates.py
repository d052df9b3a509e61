"""The certificate pass (CRT-01, CRT-07, CRT-09): one verification per certificate, the same frame as before."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.compliance.controls import certificates
from ceremony.compliance.controls.certificates import certificate_pass
from ceremony.compliance.sources import Evidence
from ceremony.issue.single import create_ca, issue
from ceremony.lint.certificate import check_certificate
from ceremony.lint.findings import failing
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, subject_name
from ceremony.record.workspace import Workspace, init_workspace
from tests.support.ceremony_files import write_register

COLUMNS = ["issuer_ca", "serial", "signature_error", "lint", "spki_sha256"]


def _issue(ws: Workspace, profile_name: str, identity: Identity) -> str:
    profile = get_profile(profile_name, {})
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(subject_name(profile, identity)).sign(key, hashes.SHA256())
    )
    issued = issue(ws, ca_name="issuing", profile_name=profile_name, csr=csr.public_bytes(serialization.Encoding.PEM),
                   csr_source="test", identity=identity, approved_by="bob")  # fmt: skip
    return issued.record.serial


def _resigned(der: bytes, key: Any, change: Callable[[Any], None], digest: str = "sha256") -> bytes:
    """``der`` with its TBS changed by ``change`` and signed again with ``key`` (ECDSA with ``digest``)."""
    cert = asn1_x509.Certificate.load(der)
    tbs = cert["tbs_certificate"]
    change(tbs)
    tbs["signature"] = {"algorithm": f"{digest}_ecdsa"}
    cert["signature_algorithm"] = {"algorithm": f"{digest}_ecdsa"}
    algorithm = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[digest]  # noqa: S303
    cert["signature_value"] = key.sign(tbs.dump(force=True), ec.ECDSA(algorithm))
    return bytes(cert.dump(force=True))


def _keep(tbs: Any) -> None:
    """No change to the TBS."""


def _rsa_key(tbs: Any) -> None:
    public = rsa.generate_private_key(65537, 2048).public_key()
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tbs["subject_public_key_info"] = asn1_x509.PublicKeyInfo.load(spki)


class Workbench:
    """A workspace with a root and an issuing CA, four device and two organisation certificates, and rows
    a hand edit or an import could add: each a copy of a device certificate under its own serial."""

    def __init__(self, root: Path) -> None:
        self.ws = init_workspace(root, key_store="software", purpose="test")
        write_register(self.ws.root)
        create_ca(self.ws, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
        create_ca(self.ws, "issuing", profile_name="ss1spca-issuing", common_name="Test Issuing",
                  approved_by="alice", issuer_ca="root")  # fmt: skip
        self.good = [
            _issue(self.ws, "ss1sp-device", Identity(eui64=f"00DB12345678000{n}", usage=usage))
            for n in (1, 2)
            for usage in ("ds", "ka")
        ]
        self.good += [
            _issue(self.ws, "ss1sp-organisation", Identity(eui64="90B3D51F30000001", usage=u, role="02", name="S1SPT"))
            for u in ("ds", "ka")
        ]
        self.ca_key = self.ws.key_store.load(self.ws.inventory.ca("issuing").key_label)
        self.device = self.der(self.good[0])
        self.defects: dict[str, str] = {}

    def der(self, serial: str) -> bytes:
        with sqlite3.connect(self.ws.root / "inventory.sqlite") as db:
            return bytes(db.execute("SELECT der FROM certificates WHERE serial = ?", (serial,)).fetchone()[0])

    def add(self, der: bytes) -> str:
        """A row for ``der`` copied from the first device certificate's, under a serial of its own."""
        with sqlite3.connect(self.ws.root / "inventory.sqlite") as db:
            db.row_factory = sqlite3.Row
            row = dict(db.execute("SELECT * FROM certificates WHERE serial = ?", (self.good[0],)).fetchone())
            row.pop("rowid", None)
            row |= {"serial": secrets.token_hex(16).upper(), "fingerprint": secrets.token_hex(32), "der": der}
            columns, marks = ", ".join(row), ", ".join("?" for _ in row)
            db.execute(f"INSERT INTO certificates ({columns}) VALUES ({marks})", tuple(row.values()))  # noqa: S608
        return str(row["serial"])

    def with_defects(self) -> dict[str, str]:
        """Each defect's row (added once), by name: what a hand edit or an import could put in the inventory."""
        if self.defects:
            return self.defects
        broken = bytearray(self.device)
        broken[-1] ^= 0x01
        sha1 = bytearray(_resigned(self.device, self.ca_key, _keep, "sha1"))
        sha1[-1] ^= 0x01
        stranger = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.load_der_x509_certificate(self.ws.inventory.ca_certificate_der("root")).subject.public_bytes()

        def under_root_name(tbs: Any) -> None:
            tbs["issuer"] = asn1_x509.Name.load(root_name)

        self.defects.update(
            {
                "broken signature": self.add(bytes(broken)),
                "signed by another key": self.add(_resigned(self.device, stranger, _keep)),
                "wrong issuer name, signature valid": self.add(_resigned(self.device, self.ca_key, under_root_name)),
                "RSA key": self.add(_resigned(self.device, self.ca_key, _rsa_key)),
                "ecdsa-with-SHA384 (outside the profile)": self.add(
                    _resigned(self.device, self.ca_key, _keep, "sha384")
                ),
                # The linter verifies no SHA-1 signature: cryptography's own verification decides it.
                "ecdsa-with-SHA1, signature broken": self.add(bytes(sha1)),
            }
        )
        return self.defects

    def reference(self) -> pd.DataFrame:
        """The pass as it was before issue O: cryptography's verification, then the full lint (which verifies
        again), then cryptography's encoding of the public key."""
        import hashlib

        oids = dict(self.ws.config.oids)
        names = [str(n) for n in Evidence(self.ws).frames.cas["name"]]
        issuers = {n: x509.load_der_x509_certificate(self.ws.inventory.ca_certificate_der(n)) for n in names}
        out = []
        for issuer_ca, serial, der, profile in self.ws.inventory.signed_certificates(names):
            cert, issuer = x509.load_der_x509_certificate(der), issuers[issuer_ca]
            try:
                cert.verify_directly_issued_by(issuer)
                signed = ""
            except Exception as exc:  # noqa: BLE001
                signed = type(exc).__name__
            problems = failing(check_certificate(der, get_profile(profile, oids), issuer=issuer))
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            out.append((issuer_ca, serial, signed, [str(p) for p in problems[:3]], hashlib.sha256(spki).hexdigest()))
        return pd.DataFrame(out, columns=COLUMNS)


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CEREMONY_TOKEN_PIN", "CEREMONY_SOFTWARE_PASSPHRASE", "CEREMONY_WORKSPACE", "SOFTHSM2_CONF"):
            mp.delenv(name, raising=False)
        made = Workbench(tmp_path_factory.mktemp("pass") / "ws")
        yield made
        made.ws.close()


def _pass(ws: Workspace) -> pd.DataFrame:
    return certificate_pass(Evidence(ws)).set_index("serial")


@pytest.fixture(params=["in this process", "in forked workers"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The pass as one task in this process, or one certificate per task in a pool of forked workers."""
    if request.param == "in forked workers":
        monkeypatch.setattr(certificates, "PASS_CHUNK", (1, 1))
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
    return str(request.param)


def test_good_certificates_give_the_frame_they_gave_before(workbench: Workbench, chunk: str) -> None:
    ev = Evidence(workbench.ws)
    frame = certificate_pass(ev)
    assert list(frame.columns) == COLUMNS
    good = frame[~frame["serial"].isin(workbench.defects.values())]  # the defects' tests may have run first
    expected = workbench.reference()
    expected = expected[~expected["serial"].isin(workbench.defects.values())]
    assert good.to_dict("records") == expected.to_dict("records")
    assert len(good) == len(workbench.good) + 2  # and the issuing CA's certificate, and the root's
    assert set(workbench.good) <= set(good["serial"])
    assert (good["signature_error"] == "").all()
    assert (good["lint"].str.len() == 0).all()
    assert ev.cache["certificate_pass_jobs"] == (1 if chunk == "in this process" else 2)


#: Each defect's signature error (CRT-09) and the lint codes (CRT-01) its row must carry.
DEFECTS = {
    "broken signature": ("InvalidSignature", ["profile.signature.invalid"]),
    "signed by another key": ("InvalidSignature", ["profile.signature.invalid"]),
    "wrong issuer name, signature valid": ("issuer name mismatch", ["profile.issuer.name_mismatch"]),
    "RSA key": ("", ["profile.key.algorithm"]),
    "ecdsa-with-SHA384 (outside the profile)": ("", ["profile.signature.algorithm"]),
    "ecdsa-with-SHA1, signature broken": (
        "ValueError: Unsupported signature algorithm",
        ["profile.signature.algorithm"],
    ),
}


def test_defective_certificates_give_the_findings_they_gave_before(workbench: Workbench, chunk: str) -> None:
    defects = workbench.with_defects()
    frame = _pass(workbench.ws)
    expected = workbench.reference().set_index("serial").loc[frame.index]
    assert frame.drop(columns="signature_error").to_dict("index") == expected.drop(columns="signature_error").to_dict(
        "index"
    )
    # The same certificates fail CRT-09; the pass says why in words where cryptography said ValueError.
    assert ((frame["signature_error"] != "") == (expected["signature_error"] != "")).all()
    for name, (error, codes) in DEFECTS.items():
        row = frame.loc[defects[name]]
        assert row["signature_error"] == error, name
        assert [c for c in codes if not any(c in text for text in row["lint"])] == [], (name, row["lint"])
    good = frame.loc[workbench.good]
    assert (good["signature_error"] == "").all() and (good["lint"].str.len() == 0).all()


def test_the_key_hash_is_of_the_subject_public_key_info_cryptography_encodes(workbench: Workbench) -> None:
    import hashlib

    frame = _pass(workbench.ws)
    rsa_row = workbench.with_defects()["RSA key"]
    for serial in [*workbench.good, rsa_row]:
        public = x509.load_der_x509_certificate(workbench.der(serial)).public_key()
        spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert frame.loc[serial, "spki_sha256"] == hashlib.sha256(spki).hexdigest()
    assert frame["spki_sha256"].str.fullmatch("[0-9a-f]{64}").all()
    assert frame.loc[workbench.good, "spki_sha256"].is_unique
    # A copy of a certificate with a broken signature still certifies the same key (CRT-07 sees it).
    assert (
        frame.loc[workbench.with_defects()["broken signature"], "spki_sha256"]
        == frame.loc[workbench.good[0], "spki_sha256"]
    )


def test_crt_09_names_each_signature_failure(workbench: Workbench) -> None:
    from ceremony.compliance.assessment import run_control
    from ceremony.model.catalogue import load_catalogue

    defects = workbench.with_defects()
    (control,) = [c for c in load_catalogue().controls if c.id == "CRT-09"]
    findings = run_control(control, Evidence(workbench.ws))
    failed = {f.subject: f.message for f in findings if f.outcome == "fail"}
    assert failed == {
        f"certificate issuing/{defects['broken signature']}": "signature does not verify under issuing "
        "(InvalidSignature)",
        f"certificate issuing/{defects['signed by another key']}": "signature does not verify under issuing "
        "(InvalidSignature)",
        f"certificate issuing/{defects['wrong issuer name, signature valid']}": "signature does not verify under "
        "issuing (issuer name mismatch)",
        f"certificate issuing/{defects['ecdsa-with-SHA1, signature broken']}": "signature does not verify under "
        "issuing (ValueError: Unsupported signature algorithm)",
    }


def test_a_workspace_without_certificates_gives_an_empty_pass_that_the_controls_read(tmp_path: Path) -> None:
    from ceremony.compliance.controls.certificates import chains, key_reuse, profile_conformance
    from ceremony.compliance.findings import Checker
    from ceremony.model.catalogue import load_catalogue

    ws = init_workspace(tmp_path / "empty", key_store="software", purpose="test")
    ev = Evidence(ws, as_of=ws.clock.now())
    done = certificate_pass(ev)
    assert len(done) == 0 and list(done.columns) == ["issuer_ca", "serial", "signature_error", "lint", "spki_sha256"]
    controls = {c.id: c for c in load_catalogue().controls}
    for control_id, check in (("CRT-01", profile_conformance), ("CRT-07", key_reuse), ("CRT-09", chains)):
        checker = Checker(controls[control_id])
        check(ev, checker)  # an empty frame of text columns: no crash, nothing failed
        assert not [f for f in checker.findings if f.outcome != "pass"]
    ws.close()
