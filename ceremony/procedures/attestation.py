"""Attestations: participants sign a sealed transcript with their registered keys.

Each attestation is one entry of ``<transcript>.attestations.jsonl`` (hash-chained like every
log here): the person, their public key, the kind of key (``token``: on the person's own PKCS#11
token; ``file``: a key file, for trying the tool only) and their signature over the seal entry's hash,
which covers the whole chain and the CA key's seal signature. The register says which key is whose
(``attestation_key``: SHA-256 of the DER SubjectPublicKeyInfo); both kinds verify by it alike.
Enrolment (:func:`enrol_person`) puts a person's key on their own token and records it in the register.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.errors import InputError, StateError
from ceremony.fs import create, read_regular, write_once
from ceremony.keys.personal import (
    FILE_KEY_NOTE,
    PASSPHRASE_ENV,
    CertificateRequest,
    FileKey,
    FilePrivateKey,
    PersonalAlgorithm,
    PersonalKey,
    TokenKey,
    TokenRef,
    enrol_token_key,
    load_private_key_file,
)
from ceremony.keys.signatures import verifies
from ceremony.model.config import load_yaml
from ceremony.model.events import Attest
from ceremony.model.people import Person, Register, load_register, with_key_fields
from ceremony.record.transcript import Journal, read_entries, verify_transcript

__all__ = ["FILE_KEY_NOTE", "PASSPHRASE_ENV"]
AttestationKey = FilePrivateKey
_REGISTER_LIMIT = 4 * 1024 * 1024


def attestations_path(transcript: Path) -> Path:
    return transcript.with_suffix(".attestations.jsonl")


def key_fingerprint(public: Any) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_attestation_key(path: Path) -> AttestationKey:
    """A person's private key file (PEM; encrypted ones take ``CEREMONY_ATTESTATION_PASSPHRASE``): a file
    key, for trying the tool only (:func:`personal_key` wraps it as one)."""
    return load_private_key_file(path)


def personal_key(key: PersonalKey | AttestationKey, path: Path | None = None) -> PersonalKey:
    """``key`` as a :class:`~ceremony.keys.personal.PersonalKey`: a bare private key is a file key."""
    if isinstance(key, FilePrivateKey):
        return FileKey(key, path)
    return key


def require_registered(person: str, register: Register, option: str = "--as") -> Person:
    """``person``'s register entry, which must name an attestation key."""
    registered = register.people.get(person)
    if registered is None:
        raise InputError(f"{option}: {person!r} is not in the participant register")
    if registered.attestation_key is None:
        raise InputError(f"{option}: the register names no attestation key for {person}")
    return registered


def check_registered(person: str, key: PersonalKey, register: Register, option: str = "--as") -> None:
    """Refuse ``key`` unless the register names it (by fingerprint) as ``person``'s attestation key."""
    registered = require_registered(person, register, option)
    fingerprint = key_fingerprint(key.public_key())
    if fingerprint != registered.attestation_key:
        where = "--key" if key.kind == "file" else "--token"
        raise InputError(
            f"{where}: this key ({fingerprint[:23]}…, {key.description}) is not the one the register names for {person}"
        )


def signing_key(
    person: str,
    register: Register,
    *,
    key_file: Path | None = None,
    token: TokenRef | None = None,
    pin: str | None = None,
) -> PersonalKey:
    """``person``'s own key, checked against the register: on their token (``token`` and ``pin``), else the
    key file ``key_file`` (for trying the tool only). For whatever a person signs: attestations, packs."""
    require_registered(person, register)
    if token is not None:
        if pin is None:
            raise InputError(f"--token: no PIN for {person}'s token")
        key: PersonalKey = TokenKey.open(token, pin)
    elif key_file is not None:
        key = FileKey(load_private_key_file(key_file), key_file)
    else:
        raise InputError(f"name {person}'s key: --token LABEL (their own token) or --key FILE")
    check_registered(person, key, register)
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


def sign_transcript(
    transcript: Path, person: str, key: PersonalKey | AttestationKey, register: Register
) -> dict[str, Any]:
    """Attest the sealed transcript as ``person`` with the key the register names for them (a bare private
    key is taken as a file key)."""
    key = personal_key(key)
    check_registered(person, key, register)
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
            signature=key.sign(bytes.fromhex(seal["hash"])).hex(),
            key_kind=key.kind,
            key_origin=key.origin,
        ),
    )


@dataclass
class AttestationStatus:
    """Who has attested a transcript, who has not, and any attestation that does not hold."""

    attested: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    #: Of ``attested``: who attested with a file key (for trying the tool only), and who with their own token.
    file_keys: list[str] = field(default_factory=list)
    token_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.invalid

    def render(self) -> str:
        text = f"attested by: {', '.join(self.attested) or 'nobody yet'}; not yet: {', '.join(self.missing) or 'none'}"
        if self.file_keys:
            text += f"; with a {FILE_KEY_NOTE}: {', '.join(self.file_keys)}"
        return text + (f"; INVALID: {', '.join(self.invalid)}" if self.invalid else "")


def attestation_entries(transcript: Path) -> list[dict[str, Any]]:
    """The entries of a transcript's attestation log (none when nobody has attested)."""
    return Journal(attestations_path(transcript)).entries()


def key_kind(entry: dict[str, Any]) -> str:
    """The kind of key an attestation entry says it was made with (entries from before token keys: file)."""
    return str(entry.get("key_kind") or "file")


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
        if key_ok and signed:
            (status.token_keys if key_kind(entry) == "token" else status.file_keys).append(person)
    status.missing = [p for p in participants(start) if p not in status.attested and p not in status.invalid]
    return status


# --- enrolment: a person's key on their own token, in the register --------------------------------------
@dataclass(frozen=True)
class Enrolment:
    """What an enrolment did (no secret in it)."""

    person: str
    register: Path
    fingerprint: str
    certificate: Path
    token_label: str
    key_generated: bool
    comments_kept: bool


def _certificate_path(register: Path, person: str, certificate: x509.Certificate) -> tuple[Path, bool]:
    """Where the certificate goes (``<register dir>/people/<person>.pem``, or beside it for a new key when
    that file certifies another one), and whether it still has to be written."""
    path = register.parent / "people" / f"{person}.pem"
    fingerprint = key_fingerprint(certificate.public_key())
    if path.exists():
        try:
            there = x509.load_pem_x509_certificate(read_regular(path, 64 * 1024, "certificate"))
        except ValueError:
            raise StateError(f"{path} is not a PEM certificate; move it away before enrolling {person}") from None
        if key_fingerprint(there.public_key()) == fingerprint:
            return path, False
        path = path.with_name(f"{person}-{fingerprint.removeprefix('sha256:')[:16]}.pem")
        if path.exists():
            return path, False
    return path, True


def _replace_register(register: Path, text: str, person: str, values: dict[str, str]) -> None:
    """Write ``text`` as the new register: a new file beside it (exclusive, no link followed), read back
    strictly with ``person``'s fields as enrolled, then moved over the old one in one step."""
    tmp = register.with_name(f".{register.name}.enrol-{person}.tmp")
    try:
        with create(tmp, mode=register.stat().st_mode & 0o777, what="register drafts", text=True) as fh:
            fh.write(text)
        entry = load_register(tmp).people[person]
        if any(getattr(entry, name) != value for name, value in values.items()):
            raise StateError(f"{register}: the rewritten entry of {person} did not read back as enrolled")
        os.replace(tmp, register)
    finally:
        tmp.unlink(missing_ok=True)


def enrol_person(
    register_path: Path,
    person: str,
    token: TokenRef,
    pin: str,
    *,
    algorithm: PersonalAlgorithm = "ec-p256",
    now: datetime,
) -> Enrolment:
    """Put ``person``'s attestation key on their own token (generated there, or the one already there under
    the label ``attestation``), certify it (self-signed: CN = person, O = organisation), write the certificate
    beside the register (``people/<person>.pem``) and record in the register the key's fingerprint, the
    certificate and the token's label. Only that person's entry changes; comments are kept when the entry
    is a plain block (else the register is rewritten whole, without its comments: ``comments_kept``)."""
    register = load_register(register_path)
    registered = register.people.get(person)
    if registered is None:
        raise InputError(f"{person!r} is not in the participant register {register_path}")
    text = read_regular(register_path, _REGISTER_LIMIT, "participant register").decode("utf-8")
    request = CertificateRequest(person=person, organisation=registered.organisation, not_before=now)
    key, certificate, generated = enrol_token_key(token, pin, algorithm, request)
    fingerprint = key_fingerprint(key.public_key())
    path, new = _certificate_path(register_path, person, certificate)
    values = {
        "attestation_key": fingerprint,
        "attestation_certificate": path.relative_to(register_path.parent).as_posix(),
        "attestation_token": token.token_label,
    }
    edited = with_key_fields(text, person, values)
    kept = edited is not None
    if edited is None:
        data = load_yaml(register_path)
        data["people"][person].update(values)
        edited = yaml.safe_dump(data, sort_keys=False)
    if new:
        write_once(path, certificate.public_bytes(serialization.Encoding.PEM), what="participant certificates")
    _replace_register(register_path, edited, person, values)
    return Enrolment(person, register_path, fingerprint, path, token.token_label, generated, kept)
