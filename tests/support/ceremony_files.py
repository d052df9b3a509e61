"""Helpers for tests that run ceremonies: example-file variants, approvals, a live workspace, consoles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ceremony import procedures
from ceremony.model.ceremony_file import load_ceremony, record_approval
from ceremony.model.people import load_register
from ceremony.procedures.consoles import Unattended
from ceremony.record.workspace import Workspace, init_workspace

DATA = Path(__file__).resolve().parents[2] / "data"
CEREMONIES = DATA / "ceremonies"
ORDER = ("token-init", "root-ca", "issuing-ca", "key-backup", "key-restore", "key-destruction")


def variant(directory: Path, name: str, change: dict[str, Any], *, as_name: str | None = None) -> Path:
    """A copy of an example ceremony file with dotted fields changed."""
    data = yaml.safe_load((CEREMONIES / name).read_text())
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (as_name or name)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def live_workspace(root: Path, kind: str) -> Path:
    """A new workspace whose token is left to the token-initialisation ceremony, with the example people as
    its own register (a workspace never falls back to data/people.yaml)."""
    init_workspace(root, key_store=kind, token_label="s1sp-ca-token", initialise_token=False, purpose="test").close()  # type: ignore[arg-type]
    write_register(root)
    return root


def write_register(root: Path) -> Path:
    """``root``/people.yaml: a copy of the example register (for tests whose workspace needs one)."""
    path = root / "people.yaml"
    path.write_bytes((DATA / "people.yaml").read_bytes())
    return path


def approve(ws_root: Path, path: Path, by: tuple[str, ...] = ("alice", "victor")) -> None:
    ws = Workspace.open(ws_root)
    register = load_register(DATA / "people.yaml")
    for person in by:
        record_approval(ws.journal, load_ceremony(path), person, register)
    ws.close()


def run(ws_root: Path, path: Path, **kw: Any) -> procedures.Outcome:
    """Approve (unless rehearsing) and run a whole ceremony."""
    if not kw.get("rehearsal"):
        approve(ws_root, path)
    return procedures.run(path, ws_root, **kw)


def run_examples(ws_root: Path, upto: str) -> dict[str, procedures.Outcome]:
    """Run the example ceremonies in order, up to and including ``upto``."""
    done = {}
    for kind in ORDER[: ORDER.index(upto) + 1]:
        done[kind] = run(ws_root, CEREMONIES / f"{kind}.yaml")
    return done


def run_notebooks(ws_root: Path, stems: list[tuple[str, str]]) -> list[Path]:
    """Approve each (notebook stem, ceremony type)'s example file and run the notebook with ``ceremony run``
    (papermill), each in a forked child (a SoftHSM2 workspace's token library is per process); returns the
    transcripts, each verified intact and sealed."""
    from ceremony.cli.main import main
    from ceremony.model.ceremony_file import load_ceremony
    from ceremony.record.transcript import verify_transcript
    from tests.support.processes import in_child

    notebooks = DATA.parent / "notebooks"
    transcripts = []
    for stem, kind in stems:
        path = CEREMONIES / f"{kind}.yaml"
        approve(ws_root, path)
        code = in_child(main, ["--workspace", str(ws_root), "run", str(notebooks / f"{stem}.ipynb")])
        assert code == 0, f"ceremony run {stem}: exit {code}"
        transcript = ws_root / "transcripts" / f"{load_ceremony(path).spec.ceremony_id}.jsonl"
        assert verify_transcript(transcript).ok, transcript
        transcripts.append(transcript)
    return transcripts


class Presenting(Unattended):
    """Unattended, except that the shares for some purposes are the ones the test hands over."""

    def __init__(self, ws_root: Path, shares: dict[str, list[tuple[str, str]]]) -> None:
        super().__init__(Workspace.open(ws_root))
        self.shares = shares

    def present_shares(self, purpose: str, custodians: list[str], m: int) -> list[tuple[str, str]]:
        if purpose in self.shares:
            return self.shares[purpose]
        return super().present_shares(purpose, custodians, m)


def _empty_csr(key: Any) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def device_list(directory: Path, devices: int, *, first: int = 1, pem: bool = False) -> Path:
    """A device list of ``devices`` devices (a DS and a KA CSR each, fresh P-256 keys) under ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    (directory / "csr").mkdir(parents=True, exist_ok=True)
    rows = ["eui64,usage,csr"]
    for n in range(first, first + devices):
        eui64 = f"{0x00DB123400000000 + n:016X}"
        for usage in ("ds", "ka"):
            der = _empty_csr(ec.generate_private_key(ec.SECP256R1()))
            name = f"csr/{eui64}-{usage}.{'pem' if pem else 'der'}"
            data = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM) if pem else der
            (directory / name).write_bytes(data)
            rows.append(f"{eui64},{usage},{name}")
    path = directory / "devices.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
