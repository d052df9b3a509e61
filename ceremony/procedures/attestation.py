"""Attestations: participants sign a sealed transcript with their registered keys.

Each attestation is one entry of ``<transcript>.attestations.jsonl`` (hash-chained like every
log here): the person, their public key, and their signature over the seal entry's hash, which
covers the whole chain and the CA key's seal signature. The register says which key is whose
(``attestation_key``: SHA-256 of the DER SubjectPublicKeyInfo).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ceremony.errors import InputError, StateError
from ceremony.keys.signatures import sign, verifies
from ceremony.model.events import Attest
from ceremony.model.people import Register
from ceremony.record.transcript import Journal, read_entries, verify_transcript

PASSPHRASE_ENV = "CEREMONY_ATTESTATION_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
AttestationKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def attestations_path(transcript: Path) -> Path:
    return transcript.with_suffix(".attestations.jsonl")


def key_fingerprint(public: Any) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_attestation_key(path: Path) -> AttestationKey:
    """A person's private key file (PEM; encrypted ones take ``CEREMONY_ATTESTATION_PASSPHRASE``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--key: cannot read {path} ({exc.strerror})") from None
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except (ValueError, TypeError):
        raise InputError(f"--key: {path} is not a PEM private key this passphrase opens") from None
    if not isinstance(key, AttestationKey):
        raise InputError(f"--key: {path} holds an unsupported key type")
    return key


def _verifies(public_hex: str, signature_hex: str, data: bytes) -> bool:
    try:
        public = serialization.load_der_public_key(bytes.fromhex(public_hex))
        return verifies(public, bytes.fromhex(signature_hex), data)
    except ValueError:
        return False


def _sealed(transcript: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(start entry, seal entry) of an intact, sealed transcript; refuses anything else."""
    report = verify_transcript(transcript)
    if not report.ok:
        raise StateError(f"only an intact, sealed transcript can be attested: {report.message}")
    entries = read_entries(transcript)
    return entries[0], entries[-1]


def participants(start: dict[str, Any]) -> list[str]:
    """Everyone with a seat in the ceremony, in seat order, once each."""
    seats = start.get("ceremony", {}).get("participants", {})
    people = [seats.get("administrator")] + [
        pid for role in ("operators", "custodians", "witnesses") for pid in seats.get(role, [])
    ]
    return list(dict.fromkeys(p for p in people if p))


def sign_transcript(transcript: Path, person: str, key: AttestationKey, register: Register) -> dict[str, Any]:
    """Attest the sealed transcript as ``person`` with the key the register names for them."""
    registered = register.people.get(person)
    if registered is None:
        raise InputError(f"--as: {person!r} is not in the participant register")
    if registered.attestation_key is None:
        raise InputError(f"--as: the register names no attestation key for {person}")
    fingerprint = key_fingerprint(key.public_key())
    if fingerprint != registered.attestation_key:
        raise InputError(f"--key: this key ({fingerprint[:23]}…) is not the one the register names for {person}")
    start, seal = _sealed(transcript)
    log = Journal(attestations_path(transcript))
    if any(e.get("person") == person for e in log.entries()):
        raise StateError(f"{person} has already attested {transcript.name}")
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return log.append(
        Attest(
            transcript=transcript.name,
            ceremony_id=start.get("ceremony_id"),
            seal_hash=seal["hash"],
            person=person,
            participant=person in participants(start),
            public_key=public.hex(),
            signature=sign(key, bytes.fromhex(seal["hash"])).hex(),
        ),
    )


@dataclass
class AttestationStatus:
    """Who has attested a transcript, who has not, and any attestation that does not hold."""

    attested: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.invalid

    def render(self) -> str:
        text = f"attested by: {', '.join(self.attested) or 'nobody yet'}; not yet: {', '.join(self.missing) or 'none'}"
        return text + (f"; INVALID: {', '.join(self.invalid)}" if self.invalid else "")


def attestation_status(transcript: Path, register: Register) -> AttestationStatus:
    """Check every attestation against the seal and the register; list the participants still to sign."""
    entries = read_entries(transcript)
    status = AttestationStatus()
    if not entries:
        return status
    start, seal = entries[0], entries[-1]
    log = Journal(attestations_path(transcript))
    chain = log.verify()
    if not chain.ok:
        status.invalid.append(f"attestation log ({chain.error})")
    for entry in log.entries():
        person = str(entry.get("person"))
        registered = register.people.get(person)
        key_ok = (
            registered is not None
            and registered.attestation_key == "sha256:" + hashlib.sha256(bytes.fromhex(entry["public_key"])).hexdigest()
        )
        signed = entry.get("seal_hash") == seal.get("hash") and _verifies(
            entry["public_key"], entry["signature"], bytes.fromhex(str(seal.get("hash")))
        )
        (status.attested if key_ok and signed else status.invalid).append(person)
    status.missing = [p for p in participants(start) if p not in status.attested and p not in status.invalid]
    return status
