"""Ceremony procedures: one class per ceremony type, whose script is a fixed sequence of steps.

The notebooks step through a procedure one step per cell; ``run`` goes through the whole script.
The base (steps, transcript, seal, tokens and custody) is in ceremony/procedure_base.py; the
symmetric-key ceremonies are in ceremony/symmetric_procedures.py.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.errors import CeremonyError, ConfigError, InputError, StateError, TokenError
from ceremony.fs import sha256_file, write_once
from ceremony.issue.single import create_ca
from ceremony.keys.custody import (
    CustodyError,
    Share,
    combine,
    kcv,
    new_secret,
)
from ceremony.keys.signatures import sign, verifies
from ceremony.keys.store import (
    WRAP_PADDED_TO,
    WRAP_PADDING,
    KeyStore,
    choose_wrap_mechanism,
    export_control,
    wrap_mechanism_name,
)
from ceremony.model.ceremony_file import (
    IssuingCeremony,
    KeyBackupCeremony,
    KeyDestructionCeremony,
    KeyRestoreCeremony,
    Token,
)
from ceremony.model.events import Action, Event, KeyDestroyed
from ceremony.procedures.base import SEAL_KEY, Procedure, _fp, _spki_sha256
from ceremony.record.transcript import read_aloud, read_entries
from ceremony.record.workspace import Workspace


# --- pre-flight on the token ------------------------------------------------------------------
def labels_on_token(ws: Workspace, token_label: str) -> set[str] | None:
    """The key labels already taken on a token of ``ws``, read without a PIN where the store allows it (a
    PKCS#11 token's public objects); a trial workspace's software store from its own passphrase source. None:
    they cannot be read before activation (the step then refuses a taken label itself)."""
    ks = ws.config.key_store
    if not ws.token_exists(token_label):
        return set()
    if ks.kind == "pkcs11":
        from ceremony.keys.pkcs11 import object_labels

        assert ks.module is not None
        return object_labels(ks.module, token_label, ws.softhsm_conf)
    if ws.live or token_label != ws.token_label:
        return None
    try:
        return set(ws.key_store.labels())
    except CeremonyError:  # no passphrase source (or not a quorum of shares): the activation step asks
        return None


def refuse_token_label(procedure: Procedure, what: str) -> None:
    """Refuse a ceremony file whose token is not the workspace's (the one ``workspace.yaml`` names)."""
    label, theirs = procedure.token.label, procedure.ws.token_label
    if label != theirs:
        raise ConfigError(
            f"{procedure.ceremony.path}: token.label: this workspace's {what} token {theirs!r} "
            f"(workspace.yaml key_store.token_label), not {label!r}; correct the file and have it approved again"
        )


def refuse_taken_labels(procedure: Procedure, labels: list[str]) -> None:
    """Refuse, before anything touches the token, a key label a step would find taken."""
    taken = labels_on_token(procedure.ws, procedure.token.label)
    for label in labels:
        if taken is not None and label in taken:
            left = _left_by(procedure.ws, label)
            raise StateError(
                f"{procedure.ceremony.path}: key.label: token {procedure.token.label!r} already holds a key "
                f"labelled {label!r}; "
                + (
                    f"ceremony {left} generated it and stopped unsealed: abandon it (`ceremony abandon {left} "
                    "--witness P1 --witness P2`), which destroys the key"
                    if left
                    else "give the key another label"
                )
            )


def _unsealed(ws: Workspace, wanted: Callable[[dict[str, Any]], bool], label: str | None = None) -> str | None:
    """The id of an unsealed ceremony whose start ``wanted`` accepts (and, with ``label``, whose transcript says it
    generated that key): what an abandonment would clear away."""
    for path in sorted(ws.transcripts_dir.glob("*.jsonl")):
        if path.name.endswith(".attestations.jsonl"):
            continue
        entries = read_entries(path)
        if not entries or any(e.get("event") == Event.SEAL for e in entries) or not wanted(entries[0]):
            continue
        if label is None or any(
            e.get("step") == Action.KEY_GENERATE and (e.get("details") or {}).get("key_label") == label for e in entries
        ):
            return path.stem
    return None


def _left_by(ws: Workspace, label: str) -> str | None:
    """The unsealed ceremony whose transcript says it generated ``label`` (what an abandonment would destroy)."""
    return _unsealed(ws, lambda start: True, label)


# --- token initialisation ------------------------------------------------------------------
class TokenInit(Procedure):
    TYPE = "token-init"
    SCRIPT = (("initialise", "initialise the token; split its PINs among the custodians; confirm every card"),)

    def check(self) -> None:
        super().check()
        refuse_token_label(self, "ceremonies initialise")
        if self.ws.token_exists(self.token.label):
            left = _unsealed(self.ws, self._same_token)
            raise StateError(
                f"{self.ceremony.path}: token.label: token {self.token.label!r} already exists in {self.ws.root}; "
                "a token is initialised once (an interrupted token-init is abandoned, and its token deleted, with "
                f"`ceremony abandon {left or 'CEREMONY_ID'} --witness P1 --witness P2`)"
            )

    def _same_token(self, start: dict[str, Any]) -> bool:
        """Whether a transcript's start is of a token-init of this ceremony's token."""
        token = (start.get("ceremony") or {}).get("token") or {}
        return start.get("type") == self.TYPE and token.get("label") == self.token.label

    def do_initialise(self) -> dict[str, Any]:
        gate = self._gate(
            "initialise", f"initialise token {self.token.label!r}", [self.spec.participants.administrator]
        )
        record = self._new_token(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        return self._record(
            Action.TOKEN_INITIALISE,
            f"token {self.token.label!r} initialised; SO and user PINs generated, never shown, split "
            f"{self.quorum.m}-of-{self.quorum.n}",
            [self.spec.participants.administrator, *self.operators, *self.custodians],
            details={**record, **gate, "token_bag": self.spec.bags.tokens.get(self.token.label)},
        )


# --- root and issuing CA ---------------------------------------------------------------------
class RootCA(Procedure):
    TYPE = "root-ca"
    SCRIPT: ClassVar[tuple[tuple[str, str], ...]] = (
        ("activate", "custodians present their PIN shares; the token is activated"),
        ("generate-key", "generate the CA key on the token, as the key spec says"),
        ("issue-certificate", "issue the CA certificate from the naming document (lint before signing)"),
        ("check-naming", "witness check: the certificate matches the naming document and the key map"),
        ("fingerprint", "write the certificate's fingerprint statement"),
    )

    def do_activate(self) -> dict[str, Any]:
        return self._activate(self.token.label)

    def do_generate_key(self) -> dict[str, Any]:
        key = self.spec.key
        gate = self._gate("generate-key", f"generate {key.algorithm} key {key.label!r}", self.operators)
        store = self._key_store()
        generated = store.generate(key.label, key.algorithm, extractable=key.backup)
        self._key_on_record(key.label, generated.public_key(), purpose="ca", origin="generated")
        self.seal_with = (store, key.label)
        return self._record(
            Action.KEY_GENERATE,
            f"{key.algorithm} key {key.label!r} generated on token {self.token.label!r}"
            + (" (wrapped backup allowed: SENSITIVE and EXTRACTABLE)" if key.backup else " (never extractable)"),
            self.operators,
            outputs={"public_key": _spki_sha256(generated.public_key())},
            details={
                "key_label": key.label,
                "algorithm": key.algorithm,
                "backup_allowed": key.backup,
                "attributes": store.attributes(key.label).record(),
                **gate,
            },
        )

    def _issuer(self) -> str | None:
        return None

    def check(self) -> None:
        super().check()
        if self.token.label != self.ws.token_label:
            raise ConfigError(
                f"{self.ceremony.path}: token.label: this workspace's CA keys live on token "
                f"{self.ws.token_label!r} (workspace.yaml key_store.token_label), not {self.token.label!r}"
            )
        self._check_naming()
        if not self.rehearsal and not self.ws.token_exists(self.token.label):
            raise StateError(
                f"{self.ceremony.path}: token.label: token {self.token.label!r} is not initialised in "
                f"{self.ws.root}; run its token-init ceremony first"
            )
        refuse_taken_labels(self, [self.spec.key.label])

    def _check_naming(self) -> None:
        """What the certificate step asks of the workspace, asked before the key is generated: the CA name is
        new, the issuer exists and may issue under the profile, and the validity ends within the issuer's."""
        from ceremony.model.profiles import get_profile
        from ceremony.model.tbs import Issuer, check_validity, key_identifier

        spec, src = self.spec, self.ceremony.path
        if spec.ca in self.ws.inventory.ca_names():
            raise StateError(f"{src}: ca: CA {spec.ca!r} already exists in {self.ws.root}; name another CA")
        issuer_name = self._issuer()
        if issuer_name is None:
            return
        if issuer_name not in self.ws.inventory.ca_names():
            known = ", ".join(self.ws.inventory.ca_names()) or "none"
            raise ConfigError(f"{src}: issuer: no CA named {issuer_name!r} in this workspace (known: {known})")
        parent = self.ws.inventory.ca(issuer_name)
        profile = get_profile(spec.naming.profile, self.ws.config.oids)
        if parent.profile not in profile.rules.issued_by:
            raise ConfigError(
                f"{src}: issuer: profile {profile.name} must be issued by {', '.join(profile.rules.issued_by)}, "
                f"not by CA {issuer_name} ({parent.profile})"
            )
        cert = x509.load_der_x509_certificate(self.ws.inventory.ca_certificate_der(issuer_name))
        issuer = Issuer(cert.subject, key_identifier(cert.public_key()), cert.not_valid_after_utc)  # type: ignore[arg-type]
        try:
            check_validity(profile, spec.naming.validity_days, self.ws.clock.now(), issuer)
        except InputError as exc:
            raise ConfigError(f"{src}: naming.validity_days: {exc.message}") from None

    def expected_outputs(self) -> dict[str, str]:
        cas = f"artifacts/cas/{self.spec.ca}"
        out = {"certificate": f"{cas}.pem"}
        return out | ({"fingerprint_statement": f"{cas}.fingerprint.txt"} if self.TYPE == "root-ca" else {})

    def do_issue_certificate(self) -> dict[str, Any]:
        spec = self.spec
        issued = create_ca(
            self.ws,
            spec.ca,
            profile_name=spec.naming.profile,
            common_name=spec.naming.common_name,
            approved_by=(self.approved_by or [spec.participants.administrator])[0],
            issuer_ca=self._issuer(),
            algorithm=spec.key.algorithm,
            days=spec.naming.validity_days,
            key_label=spec.key.label,
            existing_key=True,
        )
        self.certificate = issued.certificate
        return self._record(
            Action.CERTIFICATE_ISSUE,
            f"CA certificate for {spec.ca!r} issued under profile {spec.naming.profile}",
            self.operators,
            outputs=self._output("certificate", issued.artifact),
            details={
                "ca": spec.ca,
                "serial": issued.record.serial,
                "subject": issued.certificate.subject.rfc4514_string(),
                "issuer_ca": self._issuer(),
                "not_before": issued.certificate.not_valid_before_utc.isoformat(),
                "not_after": issued.certificate.not_valid_after_utc.isoformat(),
                "fingerprint": issued.record.fingerprint,
            },
        )

    def do_check_naming(self) -> dict[str, Any]:
        cert, naming = self.certificate, self.spec.naming
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days + 1
        key = self._key_store().load(self.spec.key.label)
        checks = {
            "common_name": bool(cn) and cn[0].value == naming.common_name,
            "validity_days": days == naming.validity_days,
            "key_label": cert.public_key() == key.public_key(),
        }
        failed = [name for name, ok in checks.items() if not ok]
        entry = self._record(
            Action.NAMING_CHECK,
            "certificate checked against the naming document and the key map",
            self.spec.participants.witnesses,
            details={"checks": checks},
            result="ok" if not failed else "failed: " + ", ".join(failed),
        )
        if failed:
            raise StateError(f"the CA certificate does not match the naming document: {', '.join(failed)}")
        return entry

    def do_fingerprint(self) -> dict[str, Any]:
        cert = self.certificate
        der = cert.public_bytes(serialization.Encoding.DER)
        digest = hashlib.sha256(der).digest()
        path = self.ws.root / self.expected_outputs()["fingerprint_statement"]
        text = (
            ("REHEARSAL - NOT FOR PUBLICATION\n" if self.rehearsal else "")
            + (f"{self.trial_mark} - NOT FOR PUBLICATION\n" if self.trial_mark and not self.rehearsal else "")
            + f"Fingerprint statement: CA certificate {self.spec.ca}\n"
            f"Subject:    {cert.subject.rfc4514_string()}\n"
            f"Serial:     {cert.serial_number:X}\n"
            f"Not after:  {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%SZ}\n"
            f"SHA-256:    {digest.hex(':').upper()}\n"
            f"Read aloud: {read_aloud(digest)}\n"
            f"Ceremony:   {self.spec.ceremony_id} on {self.spec.date}\n"
        )
        write_once(path, text.encode())
        return self._record(
            Action.FINGERPRINT_STATEMENT,
            "fingerprint statement of the CA certificate written for publication",
            [self.spec.participants.administrator],
            outputs=self._output("fingerprint_statement", path),
            details={"sha256": digest.hex(), "words": read_aloud(digest)},
        )


class IssuingCA(RootCA):
    TYPE = "issuing-ca"
    SCRIPT = RootCA.SCRIPT[:-1]  # the issuing CA's fingerprint is its issuer's business

    def _issuer(self) -> str | None:
        spec: IssuingCeremony = self.spec
        return spec.issuer


# --- backup, restore, destruction -------------------------------------------------------------
def _requested(token: Token) -> int | None:
    """The wrap mechanism a ceremony file names (None: "auto", the token's list decides)."""
    return None if token.wrap_mechanism == "auto" else int(token.wrap_mechanism, 16)


def _hex(mechanism: int) -> str:
    return f"0x{mechanism:04X}"


def _mechanism_record(mechanism: int | None) -> dict[str, Any]:
    """What a backup's metadata and transcript say of how the key was wrapped (None: the software store)."""
    if mechanism is None:
        return {
            "wrap_mechanism": None,
            "wrap_mechanism_name": "none: PBES2 (AES-256-CBC) encrypted PKCS#8 from the software key store",
            "padding": "not applicable",
            "padded_to_multiple_of": None,
        }
    return {
        "wrap_mechanism": _hex(mechanism),
        "wrap_mechanism_name": wrap_mechanism_name(mechanism),
        "padding": WRAP_PADDING.get(mechanism, "unknown"),
        "padded_to_multiple_of": WRAP_PADDED_TO.get(mechanism),
    }


def write_backup(
    procedure: Procedure,
    path: Path,
    wrapped: bytes,
    *,
    public_key: Any,
    mechanism: int | None,
    kcv: str,
    shares: list[Share],
    supersedes: dict[str, Any] | None = None,
) -> Path:
    """Write a wrapped backup once (0600) and its metadata beside it: how it was wrapped, the backup key's check
    value and split, the public key, the blob's digest, and the backup it replaces (a re-wrap); returns the
    metadata's path."""
    spec = procedure.spec
    write_once(path, wrapped, mode=0o600)
    public_der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    meta = {
        "ceremony_id": spec.ceremony_id,
        "rehearsal": procedure.rehearsal,
        "key_label": spec.key_label,
        "token": procedure.token.label,
        "key_store": procedure.ws.config.key_store.kind,
        **_mechanism_record(mechanism),
        "kek_purpose": f"{spec.key_label}.kek",
        "kcv": kcv,
        "quorum": {"m": procedure.quorum.m, "n": procedure.quorum.n},
        "shares": {s.custodian: s.fingerprint for s in shares},
        "public_key": public_der.hex(),
        "wrapped_sha256": hashlib.sha256(wrapped).hexdigest(),
        **({"supersedes": supersedes} if supersedes else {}),
    }
    meta_path = path.with_name(path.name + ".json")
    write_once(meta_path, json.dumps(meta, indent=2).encode())
    return meta_path


@dataclass(frozen=True)
class Backup:
    """A wrapped backup as read back: the blob, its metadata, and both files' paths."""

    path: Path
    meta_path: Path
    wrapped: bytes
    meta: dict[str, Any]


def read_backup(ws: Workspace, relative: str, source: str) -> Backup:
    """The backup at ``relative`` with its metadata, the blob checked against the digest its ceremony recorded;
    a backup another backup's metadata says it supersedes (a re-wrap retired it) is refused.

    Raises:
        InputError: missing, altered, or retired (naming the ceremony that retired it).
    """
    path = ws.root / relative
    meta_path = path.with_name(path.name + ".json")
    if not path.is_file() or not meta_path.is_file() or path.is_symlink() or meta_path.is_symlink():
        raise InputError(f"{source}: backup: {relative} (and its .json) not found in {ws.root}")
    wrapped = path.read_bytes()
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    digest = hashlib.sha256(wrapped).hexdigest()
    if digest != meta.get("wrapped_sha256"):
        raise InputError(f"{relative}: does not match the digest its backup ceremony recorded")
    for other in sorted(path.parent.glob("*.json")):
        if other == meta_path or other.is_symlink() or not other.is_file():
            continue
        try:
            later = json.loads(other.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        replaced = later.get("supersedes") if isinstance(later, dict) else None
        if isinstance(replaced, dict) and replaced.get("wrapped_sha256") == digest:
            raise InputError(
                f"{source}: backup: {relative} was retired by {later.get('ceremony_id')} (a custodian change); "
                f"restore from {(other.parent / other.stem).relative_to(ws.root)} instead"
            )
    return Backup(path, meta_path, wrapped, meta)


def backup_mechanism(store: KeyStore, meta: dict[str, Any], token: Token, source: str, backup: str) -> int | None:
    """The mechanism a backup's metadata names, which the token unwrapping it must offer (None: software)."""
    named = meta.get("wrap_mechanism")
    offered = export_control(store).wrap_mechanisms()
    if offered is None:
        return None
    if not isinstance(named, str) or not named.lower().startswith("0x"):
        raise InputError(f"{backup}: its metadata names no PKCS#11 wrap mechanism (got {named!r})")
    mechanism = int(named, 16)
    requested = _requested(token)
    if requested is not None and requested != mechanism:
        raise InputError(
            f"{source}: token.wrap_mechanism: {token.wrap_mechanism} is not the mechanism the "
            f"backup was wrapped with ({_hex(mechanism)}); use auto or {_hex(mechanism)}"
        )
    return choose_wrap_mechanism(offered, mechanism, token=token.label)


class KeyBackup(Procedure):
    TYPE = "key-backup"
    SCRIPT = (
        ("activate", "custodians present their PIN shares; the token is activated"),
        ("check-key", "read the key's attributes: it must have been generated for backup"),
        ("split-kek", "generate the backup key-encryption key; split it among the custodians"),
        ("wrap", "wrap the CA key under the backup key; write the backup"),
    )

    def expected_outputs(self) -> dict[str, str]:
        backup = f"artifacts/backups/{self.spec.key_label}.wrapped"
        return {"backup": backup, "backup_metadata": f"{backup}.json"}

    def do_activate(self) -> dict[str, Any]:
        return self._activate(self.token.label)

    def do_check_key(self) -> dict[str, Any]:
        spec: KeyBackupCeremony = self.spec
        store = self._key_store()
        attributes = store.attributes(spec.key_label)
        self.public_key = store.load(spec.key_label).public_key()
        self.seal_with = (store, spec.key_label)
        result = "ok" if attributes.extractable else "failed: the key was generated without a backup allowance"
        entry = self._record(
            Action.KEY_ATTRIBUTES,
            f"attributes of {spec.key_label!r} read before backup",
            self.operators,
            outputs={"public_key": _spki_sha256(self.public_key)},
            details={"key_label": spec.key_label, "attributes": attributes.record()},
            result=result,
        )
        if not attributes.extractable:
            raise TokenError(f"key {spec.key_label!r} was generated without a backup allowance; it cannot be wrapped")
        offered = export_control(store).wrap_mechanisms()
        self.mechanism = (
            None if offered is None else choose_wrap_mechanism(offered, _requested(self.token), token=self.token.label)
        )
        return entry

    def do_split_kek(self) -> dict[str, Any]:
        purpose = f"{self.spec.key_label}.kek"
        self.kek = new_secret(32)
        self.kek_kcv = kcv(self.kek)
        shares, cards = self._split(purpose, self.kek)
        self.kek_shares = shares
        return self._record(
            Action.CUSTODY_SPLIT,
            f"256-bit backup key generated (check value {self.kek_kcv}) and split {self.quorum.m}-of-{self.quorum.n}",
            [self.spec.participants.administrator, *self.custodians],
            details={
                **self._split_record(purpose, shares),
                "kcv": self.kek_kcv,
                "acknowledged": self._distribute(shares, cards),
                **self._deposit(purpose, shares),
            },
        )

    def do_wrap(self) -> dict[str, Any]:
        spec: KeyBackupCeremony = self.spec
        gate = self._gate("wrap", f"wrap key {spec.key_label!r} under the backup key", self.operators)
        wrapped = self._key_store().wrap(spec.key_label, self.kek, self.mechanism or 0)
        del self.kek
        path = self.ws.root / self.expected_outputs()["backup"]
        meta_path = write_backup(
            self, path, wrapped, public_key=self.public_key, mechanism=self.mechanism, kcv=self.kek_kcv,
            shares=self.kek_shares,
        )  # fmt: skip
        how = _mechanism_record(self.mechanism)
        return self._record(
            Action.KEY_WRAP,
            f"key {spec.key_label!r} wrapped under the backup key ({how['wrap_mechanism_name']})",
            self.operators,
            outputs={**self._output("backup", path), **self._output("backup_metadata", meta_path)},
            details={
                "key_label": spec.key_label,
                "attributes": self._key_store().attributes(spec.key_label).record(),
                **how,
                **gate,
            },
        )


class KeyRestore(Procedure):
    TYPE = "key-restore"
    SCRIPT = (
        ("initialise", "initialise the fresh token; split its PINs among the custodians"),
        ("rebuild-kek", "custodians present their backup-key shares; the backup key is rebuilt"),
        ("unwrap", "unwrap the CA key into the fresh token; read its attributes back"),
        ("prove", "sign a test message with the restored key; verify it under the CA certificate"),
        ("forbid-export", "custodians activate the live token; the CA key there is made non-extractable for good"),
    )

    def check(self) -> None:
        super().check()
        if self.ws.token_exists(self.token.label):
            raise StateError(
                f"{self.ceremony.path}: token.label: token {self.token.label!r} already exists in {self.ws.root}; "
                "a restore test initialises a fresh token: name another (or abandon the ceremony that left it)"
            )
        if not self.ws.token_label:
            raise ConfigError(
                f"{self.ceremony.path}: the workspace names no live token (workspace.yaml key_store.token_label), "
                "whose CA key the restore test makes non-extractable"
            )
        read_backup(self.ws, self.spec.backup, str(self.ceremony.path))  # missing, altered or retired: refused now

    def do_initialise(self) -> dict[str, Any]:
        record = self._new_token(self.token.label)
        return self._record(
            Action.TOKEN_INITIALISE,
            f"fresh token {self.token.label!r} initialised for the restore",
            [self.spec.participants.administrator, *self.operators, *self.custodians],
            details={**record, "token_bag": self.spec.bags.tokens.get(self.token.label)},
        )

    def do_rebuild_kek(self) -> dict[str, Any]:
        spec: KeyRestoreCeremony = self.spec
        backup = read_backup(self.ws, spec.backup, str(self.ceremony.path))
        path, meta_path, self.backup, self.meta = backup.path, backup.meta_path, backup.wrapped, backup.meta
        presented = self.console.present_shares(
            self.meta["kek_purpose"], self.custodians, int(self.meta["quorum"]["m"])
        )
        self.kek = combine([words for _, words in presented])
        check = kcv(self.kek)
        entry = self._record(
            Action.CUSTODY_COMBINE,
            f"backup key rebuilt from {len(presented)} shares (check value {check})",
            [c for c, _ in presented],
            inputs={"backup": sha256_file(path), "backup_metadata": sha256_file(meta_path)},
            details={"shares_presented": {c: _fp(w) for c, w in presented}, "kcv": check, "expected": self.meta["kcv"]},
            result="ok" if check == self.meta["kcv"] else "failed: check value differs",
        )
        if check != self.meta["kcv"]:
            raise CustodyError("the shares rebuild a different key (its check value differs from the backup's)")
        return entry

    def do_unwrap(self) -> dict[str, Any]:
        spec: KeyRestoreCeremony = self.spec
        store = self._key_store()
        public = serialization.load_der_public_key(bytes.fromhex(self.meta["public_key"]))
        cert = x509.load_der_x509_certificate(self.ws.inventory.ca_certificate_der(spec.ca))
        if cert.public_key() != public:
            raise InputError(f"{spec.backup}: the backup is not of CA {spec.ca}'s key")
        mechanism = self._backup_mechanism(store)
        gate = self._gate("unwrap", f"unwrap key {spec.key_label!r} into {self.token.label!r}", self.operators)
        store.unwrap(spec.key_label, self.backup, self.kek, mechanism or 0, public)  # type: ignore[arg-type]
        del self.kek
        self._key_on_record(spec.key_label, public, purpose="ca", origin="unwrapped")
        attributes = store.attributes(spec.key_label)
        protected = attributes.sensitive and not attributes.extractable
        applicable = self.ws.config.key_store.kind == "pkcs11"
        self.seal_with = (store, spec.key_label)
        self.certificate = cert
        entry = self._record(
            Action.KEY_UNWRAP,
            f"key {spec.key_label!r} restored into token {self.token.label!r}",
            self.operators,
            details={
                "key_label": spec.key_label,
                "attributes": attributes.record(),
                "protection_check": ("ok" if protected else "failed")
                if applicable
                else "not applicable: a software store cannot keep a key sensitive",
                **_mechanism_record(mechanism),
                **gate,
            },
            result="ok" if protected or not applicable else "failed: the restored key is not SENSITIVE/non-extractable",
        )
        if applicable and not protected:
            raise TokenError(f"the restored key {spec.key_label!r} is not SENSITIVE and non-extractable")
        return entry

    def _backup_mechanism(self, store: KeyStore) -> int | None:
        """The mechanism the backup's metadata names, which the restore token must offer (None: software)."""
        spec: KeyRestoreCeremony = self.spec
        return backup_mechanism(store, self.meta, self.token, str(self.ceremony.path), spec.backup)

    def do_prove(self) -> dict[str, Any]:
        spec: KeyRestoreCeremony = self.spec
        message = f"restore test {spec.ceremony_id} {secrets.token_hex(16)}".encode()
        signature = sign(self._key_store().load(spec.key_label), message)
        ok = verifies(self.certificate.public_key(), signature, message)
        entry = self._record(
            Action.KEY_PROVE,
            f"test signature by the restored key verified under CA {spec.ca}'s certificate",
            [*self.operators, *self.spec.participants.witnesses],
            details={"message": message.decode(), "signature": signature.hex(), "verified": ok},
            result="ok" if ok else "failed: the signature does not verify",
        )
        if not ok:
            raise TokenError("the restored key's signature does not verify under the CA certificate")
        return entry

    def do_forbid_export(self) -> dict[str, Any]:
        """The backup is restore-tested: the live CA key's EXTRACTABLE is cleared (PKCS#11 allows True -> False
        only, so this is for good), and its attributes are read back. The live token is activated by the
        custodians' PIN shares, as every ceremony activates it."""
        spec: KeyRestoreCeremony = self.spec
        live = str(self.ws.token_label)
        self._activate(live)
        store = self._key_store()
        if self.rehearsal and spec.key_label not in store.labels():
            return self._record(
                Action.KEY_FORBID_EXPORT,
                f"rehearsal: the throwaway token {live!r} holds no key {spec.key_label!r}; nothing to make "
                "non-extractable",
                [*self.operators, *self.spec.participants.witnesses],
                details={"key_label": spec.key_label, "token": live, "export_check": "not applicable: rehearsal"},
            )
        if store.load(spec.key_label).public_key() != self.certificate.public_key():
            raise TokenError(f"key {spec.key_label!r} on token {live!r} is not CA {spec.ca}'s key")
        gate = self._gate(
            "forbid-export", f"make key {spec.key_label!r} on {live!r} non-extractable, for good", self.operators
        )
        before = store.attributes(spec.key_label)
        after = export_control(store).forbid_export(spec.key_label)
        applicable = store.kind == "pkcs11"
        locked = after.sensitive and not after.extractable
        entry = self._record(
            Action.KEY_FORBID_EXPORT,
            f"key {spec.key_label!r} on the live token {live!r} made non-extractable after its restore test"
            if applicable
            else f"key {spec.key_label!r}: backup allowance withdrawn (a software store cannot make a key "
            "non-extractable)",
            [*self.operators, *self.spec.participants.witnesses],
            details={
                "key_label": spec.key_label,
                "token": live,
                "before": before.record(),
                "attributes": after.readback(),
                "export_check": ("ok" if locked else "failed")
                if applicable
                else "not applicable: a software key stays on disk, readable with the store passphrase; only "
                "wrap() now refuses it",
                **gate,
            },
            result="ok" if locked or not applicable else "failed: the live key is still EXTRACTABLE",
        )
        if applicable and not locked:
            raise TokenError(f"key {spec.key_label!r} on token {live!r} is still EXTRACTABLE")
        return entry


class KeyDestruction(Procedure):
    TYPE = "key-destruction"
    SCRIPT = (
        ("activate", "custodians present their PIN shares; the token is activated"),
        ("identify", "identify the key against the key map"),
        ("destroy", "destroy the key's token objects under witness; confirm they are gone"),
    )

    def do_activate(self) -> dict[str, Any]:
        return self._activate(self.token.label)

    def do_identify(self) -> dict[str, Any]:
        spec: KeyDestructionCeremony = self.spec
        store = self._key_store()
        self.public_sha256 = _spki_sha256(store.load(spec.key_label).public_key())
        self.seal_with = (store, SEAL_KEY)
        return self._record(
            Action.KEY_IDENTIFY,
            f"key {spec.key_label!r} found on token {self.token.label!r}",
            [*self.operators, *spec.participants.witnesses],
            outputs={"public_key": self.public_sha256},
            details={"key_label": spec.key_label, "attributes": store.attributes(spec.key_label).record()},
        )

    def do_destroy(self) -> dict[str, Any]:
        spec: KeyDestructionCeremony = self.spec
        gate = self._gate("destroy", f"destroy key {spec.key_label!r}: {spec.reason}", spec.participants.witnesses)
        store = self._key_store()
        store.destroy(spec.key_label)
        gone = spec.key_label not in store.labels()
        if gone:
            with self.ws.inventory.transaction() as db:
                now = self.ws.clock.now().isoformat(timespec="microseconds")
                self.ws.inventory.key_destroyed(db, self.token.label, spec.key_label, now)
        self.ws.journal.append(
            KeyDestroyed(
                ceremony_id=spec.ceremony_id,
                token_label=self.token.label,
                key_label=spec.key_label,
                public_key_sha256=self.public_sha256,
                reason=spec.reason,
                rehearsal=self.rehearsal,
            ),
        )
        self.ws.__dict__.pop("destroyed_keys", None)
        entry = self._record(
            Action.KEY_DESTROY,
            f"key {spec.key_label!r} destroyed on token {self.token.label!r}: {spec.reason}",
            [*self.operators, *spec.participants.witnesses],
            details={"key_label": spec.key_label, "gone": gone, **gate},
            result="ok" if gone else "failed: the key is still on the token",
        )
        if not gone:
            raise TokenError(f"key {spec.key_label!r} is still on token {self.token.label!r} after destruction")
        return entry
