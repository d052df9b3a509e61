"""One secret scanner for every test that leaves a workspace behind (run by an autouse fixture).

Secrets may rest only in a workspace's ``secrets/`` and ``share-cards/``, as files of mode 0600. The
scanner reads what rests there: PIN and passphrase files, deposited shares and share cards (whole, and
every run of four words), key components, and the attestation keys' private scalars. It then searches
every other file under the test's directory (workspaces, reports, executed notebooks, logs) for any of
them, and for a PEM private-key header. tests/test_secrets_scan.py goes further on a full demo: it
rebuilds PINs from the shares and decrypts the software store's keys.
"""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

RESTING_PLACES = ("secrets", "share-cards")
PEM_PRIVATE = b"PRIVATE" + b" KEY-----"


def workspaces(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("workspace.yaml")})


def _words(found: dict[str, bytes], name: str, words: str) -> None:
    found[name] = words.encode()
    items = words.split()
    for i in range(0, len(items) - 3, 4):
        found[f"words {i + 1}-{i + 4} of {name}"] = " ".join(items[i : i + 4]).encode()


def resting_secrets(ws: Path) -> tuple[dict[str, bytes], list[str]]:
    """(secret by name, files resting with a mode other than 0600)."""
    from ceremony.keys.custody import read_share_card
    from ceremony.keys.symmetric import read_component_card

    found: dict[str, bytes] = {}
    loose: list[str] = []
    for place in RESTING_PLACES:
        for path in sorted(p for p in (ws / place).rglob("*") if p.is_file()):
            where = str(path.relative_to(ws))
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                loose.append(where)
            if path.suffix in (".pin", ".passphrase") and len(path.read_text().strip()) >= 8:
                found[where] = path.read_text().strip().encode()
            elif path.suffix == ".share":
                _words(found, where, path.read_text().strip())
            elif place == "share-cards" and ".component-" in path.name:
                value = read_component_card(path)
                found[f"{where} (hex)"], found[f"{where} (HEX)"] = value.hex().encode(), value.hex().upper().encode()
            elif place == "share-cards" and path.suffix == ".txt":
                _words(found, where, read_share_card(path))
            elif path.parent.name == "attestation" and path.suffix == ".key":
                key = serialization.load_pem_private_key(path.read_bytes(), None)
                if isinstance(key, ec.EllipticCurvePrivateKey):
                    found[f"attestation key {where}"] = f"{key.private_numbers().private_value:064x}".encode()
    return {name: needle for name, needle in found.items() if len(needle) >= 8}, loose


def scan(root: Path) -> list[str]:
    """What leaked into a workspace (outside its resting places) or a reports/ directory under ``root``, by
    secret name and file (never the secret itself); empty when nothing did."""
    problems: list[str] = []
    secrets: dict[str, bytes] = {}
    resting: list[Path] = []
    for ws in workspaces(root):
        found, loose = resting_secrets(ws)
        secrets |= found
        problems += [f"{ws.name}/{where} is readable by others than its owner" for where in loose]
        resting += [ws / place for place in RESTING_PLACES]
    if not secrets and not resting:
        return problems
    areas = workspaces(root) + sorted(p for p in root.rglob("reports") if p.is_dir())
    files = {p for area in areas for p in area.rglob("*") if p.is_file()}
    for path in sorted(files):
        if any(path.is_relative_to(r) for r in resting):
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # an SQLite -shm/-wal removed as a test's last connection closed: nothing at rest
            continue
        if PEM_PRIVATE in data:
            problems.append(f"a PEM private key in {path.relative_to(root)}")
        problems += [f"{name} in {path.relative_to(root)}" for name, needle in secrets.items()
                     if needle in data or needle.lower() in data]  # fmt: skip
    return problems
