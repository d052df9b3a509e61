"""Issuing CA renewal: a new generation with a new key, the overlap, then the predecessor signing CRLs only."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from ceremony.clock import PIN_VARIABLE, PinnedClock
from ceremony.errors import ConfigError, StateError
from ceremony.issue.crl import publish_crl
from ceremony.issue.single import issue
from ceremony.model.tbs import Identity
from ceremony.record.frames import ca_lineage, frames
from ceremony.record.transcript import diff_transcripts, read_entries, verify_transcript
from ceremony.record.workspace import Workspace
from tests.support.ceremony_files import CEREMONIES, live_workspace, run, run_examples, run_notebooks, variant
from tests.support.csr_factory import good_device_csr
from tests.support.processes import in_child

RENEWAL = CEREMONIES / "issuing-ca-renewal.yaml"


def _device(ws: Workspace, ca: str, eui64: str) -> x509.Certificate:
    issued = issue(
        ws, ca_name=ca, profile_name="ss1sp-device", csr=good_device_csr()[0], csr_source="test",
        identity=Identity(eui64=eui64, usage="ds"), approved_by="bob",
    )  # fmt: skip
    return issued.certificate


def test_a_renewal_hands_over_after_the_overlap_and_the_predecessor_keeps_signing_crls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_store_kind: str
) -> None:
    root = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(root, "issuing-ca")
    outcome = in_child(run, root, RENEWAL)
    assert verify_transcript(outcome.transcript).ok
    steps = [e for e in read_entries(outcome.transcript) if e.get("event") == "step"]
    assert [e["step"] for e in steps][-1] == "ca.succession"
    assert steps[-1]["details"]["generation"] == 2 and steps[-1]["details"]["predecessor"] == "s1sp-issuing"

    def day(n: int) -> None:
        pinned = PinnedClock.parse(__import__("os").environ[PIN_VARIABLE])
        monkeypatch.setenv(PIN_VARIABLE, PinnedClock(pinned.now() + timedelta(days=n), time.time()).to_environment())

    ws = Workspace.open(root)
    try:
        old = _device(ws, "s1sp-issuing", "00DB123400000001")  # inside the overlap: the predecessor still issues
        new = _device(ws, "s1sp-issuing-g2", "00DB123400000001")  # the same device under the new key: allowed
        old_aki = old.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        new_aki = new.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert old_aki != new_aki
    finally:
        ws.close()
    day(31)  # the overlap (30 days) has ended
    ws = Workspace.open(root)
    try:
        with pytest.raises(StateError) as refused:
            _device(ws, "s1sp-issuing", "00DB123400000002")
        assert refused.value.message.startswith(
            "CA s1sp-issuing was succeeded by s1sp-issuing-g2 (issuing-ca-renewal-2027-05); its overlap ended "
        )
        assert refused.value.message.endswith("it issues nothing new (it still signs CRLs); issue from s1sp-issuing-g2")
        _device(ws, "s1sp-issuing-g2", "00DB123400000002")
        published = publish_crl(ws, "s1sp-issuing", by="bob")  # the old generation's CRL, after the renewal
        crl = x509.load_der_x509_crl(published.path.read_bytes())
        old_ca = x509.load_pem_x509_certificate((root / "artifacts" / "cas" / "s1sp-issuing.pem").read_bytes())
        assert crl.is_signature_valid(old_ca.public_key())  # type: ignore[arg-type]
        publish_crl(ws, "s1sp-issuing-g2", by="bob")
        lineage = ca_lineage(frames(ws)).set_index("name")
        from ceremony.compliance.calendar import workspace_calendar
        from ceremony.compliance.sources import Evidence

        due = workspace_calendar(Evidence(ws), (ws.clock.now() + timedelta(days=9000)).date()).items
        renewals = {i.subject for i in due if i.kind == "ca-renewal"}
        assert "CA s1sp-issuing-g2" in renewals and "CA s1sp-issuing" not in renewals  # renewed: only its expiry
        assert {"CA s1sp-issuing", "CA s1sp-issuing-g2"} <= {i.subject for i in due if i.kind == "ca-expiry"}
    finally:
        ws.close()
    assert lineage.loc["s1sp-issuing", "generation"] == 1 and lineage.loc["s1sp-issuing-g2", "generation"] == 2
    assert lineage.loc["s1sp-issuing", "successor"] == "s1sp-issuing-g2"
    assert lineage.loc["s1sp-issuing-g2", "predecessor"] == "s1sp-issuing"
    assert lineage.loc["s1sp-issuing", "valid"] == 1 and lineage.loc["s1sp-issuing-g2", "valid"] == 2


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"predecessor": "s1sp-nothing"}, ConfigError, "predecessor: no CA named 's1sp-nothing' in this workspace"),
        ({"predecessor": "s1sp-root"}, ConfigError,
         "predecessor: s1sp-root is a root CA; this ceremony renews an issuing CA"),
        ({"naming.profile": "ss1spca-root"}, ConfigError, "naming.profile: ss1spca-root is for root-ca certificates"),
    ],
)  # fmt: skip
def test_a_renewal_file_is_refused_before_any_key_is_made(
    tmp_path: Path, change: dict[str, object], error: type[Exception], message: str
) -> None:
    root = live_workspace(tmp_path / "ws", "software")
    run_examples(root, "issuing-ca")
    with pytest.raises(error) as caught:
        run(root, variant(tmp_path, "issuing-ca-renewal.yaml", change))
    assert message in caught.value.message  # type: ignore[attr-defined]
    assert not (root / "transcripts" / "issuing-ca-renewal-2027-05.jsonl").exists()


def test_a_ca_is_succeeded_once(tmp_path: Path) -> None:
    root = live_workspace(tmp_path / "ws", "software")
    run_examples(root, "issuing-ca")
    run(root, RENEWAL)
    again = variant(tmp_path, "issuing-ca-renewal.yaml",
                    {"ceremony_id": "issuing-ca-renewal-again", "ca": "s1sp-issuing-g3", "key.label": "ca-g3",
                     "outputs": {"certificate": "artifacts/cas/s1sp-issuing-g3.pem"}})  # fmt: skip
    with pytest.raises(StateError, match="predecessor: s1sp-issuing was already succeeded by s1sp-issuing-g2"):
        run(root, again)


def test_a_renewal_rehearsal_differs_from_the_live_run_only_where_it_must(tmp_path: Path) -> None:
    root = live_workspace(tmp_path / "ws", "software")
    run_examples(root, "issuing-ca")
    for kind in ("token-init", "root-ca", "issuing-ca"):  # the rehearsal area's own CAs, rehearsed first
        run(root, CEREMONIES / f"{kind}.yaml", rehearsal=True)
    rehearsed = run(root, RENEWAL, rehearsal=True)
    assert rehearsed.transcript == root / "rehearsal" / "transcripts" / "issuing-ca-renewal-2027-05.jsonl"
    real = run(root, RENEWAL)
    diff = "\n".join(diff_transcripts(rehearsed.transcript, real.transcript))
    assert '"rehearsal":true' in diff
    for step in ("key.generate", "certificate.issue", "ca.succession"):
        assert step not in diff, step


# --- root rollover ----------------------------------------------------------------------------------------------
ROLLOVER = CEREMONIES / "root-rollover.yaml"


def test_a_root_rollover_links_both_roots_so_either_trust_store_validates_the_other_chain(
    tmp_path: Path, key_store_kind: str
) -> None:
    from ceremony.cli.main import main
    from tests.support.openssl import openssl_verify

    root = live_workspace(tmp_path / "ws", key_store_kind)
    run_examples(root, "issuing-ca")
    ws = Workspace.open(root)
    try:
        device = _device(ws, "s1sp-issuing", "00DB123400000001")  # issued before the rollover, under the old root
    finally:
        ws.close()
    outcome = in_child(run, root, ROLLOVER)
    assert verify_transcript(outcome.transcript).ok
    out = outcome.outputs
    leaf = tmp_path / "device.pem"
    leaf.write_bytes(device.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.PEM))
    old_root, new_root = root / "artifacts/cas/s1sp-root.pem", root / "artifacts/cas/s1sp-root-g2.pem"
    old_issuing = root / "artifacts/cas/s1sp-issuing.pem"

    def chain(*paths: Path) -> str:
        bundle = tmp_path / f"untrusted-{len(list(tmp_path.glob('untrusted-*')))}.pem"
        bundle.write_bytes(b"".join(p.read_bytes() for p in paths))
        return str(bundle)

    # A relying party that trusts only the old root: the re-certified issuing CA, through "new key under old root".
    via_link = openssl_verify("-x509_strict", "-CAfile", str(old_root), "-untrusted",
                              chain(out["recertified_s1sp-issuing"], out["link_new_under_old"]), str(leaf))  # fmt: skip
    assert via_link.returncode == 0 and ": OK" in via_link.stdout, via_link.stdout + via_link.stderr
    without = openssl_verify("-x509_strict", "-CAfile", str(old_root), "-untrusted",
                             chain(out["recertified_s1sp-issuing"]), str(leaf))  # fmt: skip
    assert without.returncode != 0  # the link is what carries the new chain to the old root
    # A relying party that trusts only the new root: the old issuing certificate, through "old key under new root".
    back = openssl_verify("-x509_strict", "-CAfile", str(new_root), "-untrusted",
                          chain(old_issuing, out["link_old_under_new"]), str(leaf))  # fmt: skip
    assert back.returncode == 0 and ": OK" in back.stdout, back.stdout + back.stderr
    assert openssl_verify("-x509_strict", "-CAfile", str(new_root), "-untrusted", chain(old_issuing),
                          str(leaf)).returncode != 0  # fmt: skip
    # The old root's ARL lists the issuing CA's superseded certificate; the superseded path fails a CRL check.
    arl = x509.load_der_x509_crl(out["old_root_arl"].read_bytes())
    old_serial = x509.load_pem_x509_certificate(old_issuing.read_bytes()).serial_number
    entry = arl.get_revoked_certificate_by_serial_number(old_serial)
    assert entry is not None and entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name == (
        "superseded"
    )
    assert x509.load_der_x509_crl(out["new_root_arl"].read_bytes()).is_signature_valid(
        x509.load_pem_x509_certificate(new_root.read_bytes()).public_key()  # type: ignore[arg-type]
    )
    # Every certificate the rollover made passes the profile lint.
    made = [out[k] for k in ("certificate", "link_new_under_old", "link_old_under_new", "recertified_s1sp-issuing")]
    assert in_child(main, ["--workspace", str(root), "lint", *map(str, made)]) == 0
    # The roots' lineage: the new root succeeds the old one. The issuing CA, its first certificate superseded and
    # its key re-certified under the new root, goes on issuing.
    ws = Workspace.open(root)
    try:
        lineage = ca_lineage(frames(ws)).set_index("name")
        _device(ws, "s1sp-issuing", "00DB123400000002")
    finally:
        ws.close()
    assert lineage.loc["s1sp-root-g2", "predecessor"] == "s1sp-root" and lineage.loc["s1sp-root-g2", "generation"] == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"naming.common_name": "S1SP Root 2"},
         "naming.common_name: a rollover keeps the root's name (OU=00,CN=S1SP Root 1), so that its link certificates "
         "are self-issued and count toward no path length (got 'S1SP Root 2')"),
        ({"predecessor": "s1sp-issuing"}, "predecessor: s1sp-issuing is not a root CA"),
        ({"links.profile": "ss1spca-issuing"},
         "links.profile: ss1spca-issuing is for issuing-ca certificates, not links"),
        ({"recertify": ["s1sp-root"]}, "recertify[0]: s1sp-root is not an issuing CA of s1sp-root"),
        ({"approved_by": "bob"}, "approved_by: bob is not registered for the approver role"),
    ],
)  # fmt: skip
def test_a_rollover_file_is_refused_before_any_key_is_made(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    root = live_workspace(tmp_path / "ws", "software")
    run_examples(root, "issuing-ca")
    with pytest.raises(ConfigError) as caught:
        run(root, variant(tmp_path, "root-rollover.yaml", change))
    assert message in caught.value.message
    assert not (root / "transcripts" / "root-rollover-2027-05.jsonl").exists()
    assert not (root / "artifacts" / "cas" / "s1sp-root-g2.pem").exists()


def test_a_rollover_rehearsal_differs_from_the_live_run_only_where_it_must(tmp_path: Path) -> None:
    root = live_workspace(tmp_path / "ws", "software")
    run_examples(root, "issuing-ca")
    for kind in ("token-init", "root-ca", "issuing-ca"):
        run(root, CEREMONIES / f"{kind}.yaml", rehearsal=True)
    rehearsed = run(root, ROLLOVER, rehearsal=True)
    real = run(root, ROLLOVER)
    diff = "\n".join(diff_transcripts(rehearsed.transcript, real.transcript))
    assert '"rehearsal":true' in diff
    for step in ("key.generate", "certificate.issue", "ca.succession"):
        assert step not in diff, step


@pytest.mark.slow
@pytest.mark.hsm  # forked: the workspace's SoftHSM2 configuration is this process's only one
def test_the_renewal_and_rollover_notebooks_run_under_papermill(tmp_path: Path) -> None:
    root = live_workspace(tmp_path / "ws", "pkcs11")
    run_examples(root, "issuing-ca")
    run_notebooks(
        root, [("25-issuing-ca-renewal", "issuing-ca-renewal"), ("15-root-rollover-ceremony", "root-rollover")]
    )
    ws = Workspace.open(root)
    try:
        lineage = ca_lineage(frames(ws)).set_index("name")
    finally:
        ws.close()
    assert lineage.loc["s1sp-issuing-g2", "generation"] == 2 and lineage.loc["s1sp-root-g2", "generation"] == 2
