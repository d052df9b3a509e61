"""Ceremony procedures: one class per ceremony type, whose script is a fixed sequence of steps.

The notebooks step through a procedure one step per cell (the markdown between them is what
the administrator reads aloud); ``run`` goes through the whole script at once. Either way each
step appends one entry to the ceremony's hash-chained transcript, and ``finish`` seals it with
the CA key the ceremony created or used (or, when there is none, the token's ceremony-seal key).

Secrets (PINs, the backup key-encryption key, shares) exist only in memory, on share cards and,
for unattended runs, as shares deposited under ``<workspace>/secrets/``. The transcript records
fingerprints, key check values and who acknowledged what.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.artifacts import write_once, write_private
from ceremony.ceremonies import (
    CeremonyFile,
    IssuingCeremony,
    KeyBackupCeremony,
    KeyDestructionCeremony,
    KeyRestoreCeremony,
    Quorum,
    Token,
    approvals,
    load_ceremony,
    preflight,
    require_approvals,
)
from ceremony.config import data_dir
from ceremony.consoles import Console, kernel_console
from ceremony.custody import (
    CustodyError,
    Share,
    combine,
    confirm,
    deposit,
    kcv,
    new_secret,
    pin_from_secret,
    split,
    write_share_card,
)
from ceremony.errors import CeremonyError, ConfigError, InputError, StateError, TokenError
from ceremony.issuance import create_ca, operator
from ceremony.people import default_register, load_register
from ceremony.policy import PolicyParameters, load_policy
from ceremony.signatures import sign, verifies
from ceremony.signers import KeyStore
from ceremony.transcript import Transcript, read_aloud
from ceremony.workspace import Workspace, activation_purpose, init_workspace

#: The key every token gets at initialisation, to seal transcripts of ceremonies that use no CA key.
SEAL_KEY = "ceremony-seal"


# --- results ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a sealed ceremony produced: its transcript, read-aloud words and output files."""

    ceremony_id: str
    type: str
    transcript: Path
    rehearsal: bool
    words: str
    outputs: dict[str, Path] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ceremony_id": self.ceremony_id,
            "type": self.type,
            "transcript": str(self.transcript),
            "rehearsal": self.rehearsal,
            "words": self.words,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spki_sha256(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


# --- the procedure base ----------------------------------------------------------------------
class Procedure:
    """An open ceremony: its file, workspace (live, or the rehearsal area), transcript and script."""

    TYPE: ClassVar[str]
    #: The steps of the script, in order: (step id, what the administrator announces).
    SCRIPT: ClassVar[tuple[tuple[str, str], ...]]

    def __init__(
        self,
        ceremony: CeremonyFile,
        ws: Workspace,
        *,
        rehearsal: bool,
        console: Console,
        approved_by: list[str],
        policy: PolicyParameters,
    ) -> None:
        self.ceremony = ceremony
        self.spec: Any = ceremony.spec
        self.ws = ws
        self.rehearsal = rehearsal
        self.console = console
        self.approved_by = approved_by
        self.policy = policy
        self.transcript = Transcript(ws.transcripts_dir / f"{self.spec.ceremony_id}.jsonl")
        self.done: list[str] = []
        self.outputs: dict[str, Path] = {}
        self.store: KeyStore | None = None
        self.seal_with: tuple[KeyStore, str] | None = None

    # --- bookkeeping ------------------------------------------------------------------
    @property
    def custodians(self) -> list[str]:
        return list(self.spec.participants.custodians)

    @property
    def quorum(self) -> Quorum:
        return self.spec.quorum  # type: ignore[no-any-return]

    @property
    def token(self) -> Token:
        return self.spec.token  # type: ignore[no-any-return]

    @property
    def operators(self) -> list[str]:
        return list(self.spec.participants.operators)

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.ws.root))

    def _output(self, name: str, path: Path) -> dict[str, str]:
        self.outputs[name] = path
        return {name: _sha256_file(path)}

    def _gate(self, step: str, text: str, allowed: list[str]) -> dict[str, Any]:
        who = self.console.confirm(step, text, allowed)
        return {"confirmed_by": who} if who else {"confirmed_by": None, "attended": False}

    def _record(self, step: str, action: str, actors: list[str], **kw: Any) -> dict[str, Any]:
        return self.transcript.step(step, action, actors=actors, **kw)

    def expected_outputs(self) -> dict[str, str]:
        """The files this ceremony writes, by name, relative to the workspace."""
        return {}

    def check(self) -> None:
        """Refuse, before anything is written, a file this workspace cannot run as written: a token
        module that is not the workspace's, or outputs other than what this procedure writes."""
        if getattr(self.spec, "token", None) is not None:
            self._module()
        expected = self.expected_outputs()
        for name, path in self.spec.outputs.items():
            if name not in expected:
                allowed = ", ".join(expected) or "none"
                raise ConfigError(f"{self.ceremony.path}: outputs.{name}: a {self.TYPE} ceremony writes {allowed}")
            if path != expected[name]:
                raise ConfigError(f"{self.ceremony.path}: outputs.{name}: this ceremony writes {expected[name]}")

    def start(self) -> None:
        self.check()
        spec = self.spec
        kind = self.ws.config.key_store.kind
        self.transcript.start(
            spec.ceremony_id,
            self.TYPE,
            {
                "file": self.ceremony.path.name,
                "file_sha256": self.ceremony.sha256,
                "approved_by": self.approved_by,
                "approvals_required": self.policy.ceremony.approvals_required,
                "rehearsal": self.rehearsal,
                "attended": self.console.attended,
                "ceremony": spec.model_dump(),
                "key_store": kind,
                "script": [step for step, _ in self.SCRIPT],
                "run_by": operator(),
            },
        )
        if self.rehearsal:
            self.transcript.deviation(
                "rehearsal: run in the rehearsal area against a throwaway token",
                "practice run; nothing here is live",
                [spec.participants.administrator],
            )
            missing = require_approvals(self.ceremony, self.approved_by, self.policy, rehearsal=True)
            if missing:
                self.console.show(missing)
                self.transcript.deviation(missing, "rehearsal", [spec.participants.administrator])
        today = datetime.now(timezone.utc).date()
        if today != spec.day:
            self.transcript.deviation(
                f"run on {today.isoformat()}; the ceremony file is dated {spec.date}",
                "the register and policy checks used the file's date",
                [spec.participants.administrator],
            )
        if kind == "software" and getattr(spec, "token", None) is not None:
            self.transcript.deviation(
                f"the software key store stands in for token {spec.token.label!r}",
                "SoftHSM2 is not installed on this machine; keys are encrypted PKCS#8 files, not token objects",
                [spec.participants.administrator],
            )

    def step(self, name: str) -> dict[str, Any]:
        """Run the next step of the script (steps run in order, each once)."""
        script = [s for s, _ in self.SCRIPT]
        if name not in script:
            raise InputError(f"{self.TYPE} has no step {name!r}; its script is {', '.join(script)}")
        expected = script[len(self.done)] if len(self.done) < len(script) else None
        if name != expected:
            raise StateError(f"step {name!r} is out of order; the next step is {expected or 'finish (seal)'}")
        self.console.show(f"step {len(self.done) + 1}/{len(script)}: {dict(self.SCRIPT)[name]}")
        try:
            entry: dict[str, Any] = getattr(self, "do_" + name.replace("-", "_"))()
        except CeremonyError as exc:
            # On record before the error travels on; messages never carry secrets.
            self.transcript.append("step.failed", {"step": name, "error": type(exc).__name__, "message": exc.message})
            raise
        self.done.append(name)
        self.console.show(f"  {entry['result']}: {entry['action']}")
        return entry

    def describe(self) -> str:
        """What is about to happen, for the administrator to read out before the first step."""
        spec, seats = self.spec, self.spec.participants
        lines = [
            f"{'REHEARSAL of ' if self.rehearsal else ''}{self.TYPE} ceremony {spec.ceremony_id} ({spec.date})",
            f"file {self.ceremony.path.name} sha256 {self.ceremony.sha256}",
            f"approved by: {', '.join(self.approved_by) or 'nobody'}",
            f"administrator {seats.administrator}; operators {', '.join(seats.operators)}; "
            f"custodians {', '.join(seats.custodians) or 'none'}; witnesses {', '.join(seats.witnesses)}",
            f"recording {spec.recording.video_id}; transcript {self.transcript.path}",
            "script: " + "; ".join(f"{i}. {step}" for i, (step, _) in enumerate(self.SCRIPT, start=1)),
        ]
        return "\n".join(lines)

    def deviation(self, what: str, why: str, acknowledged_by: list[str]) -> dict[str, Any]:
        """Record a departure from the script (everyone present acknowledges it)."""
        return self.transcript.deviation(what, why, acknowledged_by)

    def finish(self) -> Outcome:
        """Seal the transcript with the ceremony's key; returns the outcome with the read-aloud words."""
        remaining = [s for s, _ in self.SCRIPT][len(self.done) :]
        if remaining:
            raise StateError(f"cannot seal: steps not run: {', '.join(remaining)}")
        if self.seal_with is None:
            raise StateError("cannot seal: the ceremony has no key to seal with")
        missing = [name for name in self.spec.outputs if name not in self.outputs]
        if missing:
            raise StateError(f"cannot seal: declared outputs not written: {', '.join(missing)}")
        store, label = self.seal_with
        entry = self.transcript.seal(store.load(label), key_label=label)
        self.console.show(f"sealed {self.transcript.path}\nread aloud: {entry['words']}")
        return Outcome(
            self.spec.ceremony_id, self.TYPE, self.transcript.path, self.rehearsal, entry["words"], self.outputs
        )

    def run(self) -> Outcome:
        """Every step of the script, then the seal."""
        for name, _ in self.SCRIPT:
            self.step(name)
        return self.finish()

    # --- token and custody building blocks -------------------------------------------
    def _module(self) -> str | None:
        ks = self.ws.config.key_store
        if ks.kind != "pkcs11":
            return None
        if self.token.module != "softhsm" and self.token.module != ks.module:
            raise ConfigError(
                f"{self.ceremony.path}: token.module: {self.token.module} is not this workspace's module ({ks.module})"
            )
        return ks.module

    def _initialise_token(self, label: str) -> tuple[bytes, bytes | None]:
        """A new token (or software store) with a generated user PIN and SO PIN; returns their secrets."""
        from ceremony.signers.pkcs11 import init_softhsm_token

        if self.ws.token_exists(label):
            raise StateError(f"token {label!r} already exists in {self.ws.root}; a token is initialised once")
        user = new_secret(32)
        module = self._module()
        if module is None:
            self.ws.software_dir(label).mkdir(mode=0o700, parents=True)
            return user, None
        so = new_secret(32)
        token_dir = self.ws.root / "token"
        init_softhsm_token(
            token_dir, token_dir / "softhsm2.conf", label, pin_from_secret(so), pin_from_secret(user), module=module
        )
        return user, so

    def _split(self, purpose: str, secret: bytes) -> tuple[list[Share], dict[str, Path]]:
        """Split ``secret`` m-of-n among the custodians and write one share card each."""
        q = self.quorum
        shares = split(secret, q.m, self.custodians)
        cards = {
            s.custodian: write_share_card(
                self.ws.share_cards_dir,
                ceremony_id=self.spec.ceremony_id,
                purpose=purpose,
                share=s,
                m=q.m,
                n=q.n,
                bag=self.spec.bags.share_cards.get(s.custodian),
                rehearsal=self.rehearsal,
            )
            for s in shares
        }
        return shares, cards

    def _split_record(self, purpose: str, shares: list[Share]) -> dict[str, Any]:
        return {
            "purpose": purpose,
            "m": self.quorum.m,
            "n": self.quorum.n,
            "shares": {s.custodian: s.fingerprint for s in shares},
            "share_card_bags": {s.custodian: self.spec.bags.share_cards.get(s.custodian) for s in shares},
        }

    def _distribute(self, shares: list[Share], cards: dict[str, Path]) -> dict[str, str]:
        """Each custodian types their share back in; it must match the fingerprint on record."""
        acknowledged: dict[str, str] = {}
        for share in shares:
            entered = self.console.reenter_share(share.custodian, cards[share.custodian])
            if not confirm(entered, share.fingerprint):
                raise CustodyError(f"{share.custodian}'s share as typed back does not match its fingerprint")
            acknowledged[share.custodian] = "re-entered and confirmed" if self.console.attended else "card read back"
        return acknowledged

    def _deposit(self, purpose: str, shares: list[Share]) -> dict[str, Any]:
        """Unattended runs only: rest m shares in ``secrets/`` so later unattended runs can use them."""
        if self.console.attended:
            return {"deposited": None}
        chosen = shares[: self.quorum.m]
        directory = self.ws.shares_dir(purpose)
        deposit(directory, chosen)
        return {"deposited": {"directory": self._rel(directory), "custodians": [s.custodian for s in chosen]}}

    def _new_token(self, label: str) -> dict[str, Any]:
        """Initialise a token, split its PINs among the custodians, confirm the cards, make its seal key."""
        user, so = self._initialise_token(label)
        record: dict[str, Any] = {"token": label, "key_store": self.ws.config.key_store.kind}
        purposes = [(activation_purpose(label), user)] + ([(f"{label}.so-pin", so)] if so is not None else [])
        for purpose, secret in purposes:
            shares, cards = self._split(purpose, secret)
            record[purpose] = {
                **self._split_record(purpose, shares),
                "acknowledged": self._distribute(shares, cards),
                **(self._deposit(purpose, shares) if purpose == activation_purpose(label) else {}),
            }
        store = self.ws.token_store(label, pin_from_secret(user))
        store.generate(SEAL_KEY, "ec-p256")
        record["seal_key"] = {"label": SEAL_KEY, "attributes": store.attributes(SEAL_KEY).record()}
        if label == self.ws.token_label:
            self.ws.use_key_store(store)
        self.store = store
        return record

    def _activate(self, label: str) -> dict[str, Any]:
        """Log in to the token with the PIN m custodians' shares rebuild."""
        if self.rehearsal and not self.ws.token_exists(label):
            record = self._new_token(label)
            self._record(
                "rehearsal.token",
                f"throwaway token {label!r} initialised for the rehearsal",
                [self.spec.participants.administrator],
                details=record,
            )
        purpose = activation_purpose(label)
        presented = self.console.present_shares(purpose, self.custodians, self.quorum.m)
        store = self.ws.token_store(label, pin_from_secret(combine([words for _, words in presented])))
        if label == self.ws.token_label:
            self.ws.use_key_store(store)
        self.store = store
        return self._record(
            "token.activate",
            f"token {label!r} activated by {len(presented)} custodians' PIN shares",
            [c for c, _ in presented],
            details={"token": label, "shares_presented": {c: _fp(w) for c, w in presented}},
        )

    def _key_store(self) -> KeyStore:
        if self.store is None:
            raise StateError("the token is not activated")
        return self.store


def _fp(words: str) -> str:
    from ceremony.custody import share_fingerprint

    return share_fingerprint(words)


# --- token initialisation ------------------------------------------------------------------
class TokenInit(Procedure):
    TYPE = "token-init"
    SCRIPT = (("initialise", "initialise the token; split its PINs among the custodians; confirm every card"),)

    def do_initialise(self) -> dict[str, Any]:
        gate = self._gate(
            "initialise", f"initialise token {self.token.label!r}", [self.spec.participants.administrator]
        )
        record = self._new_token(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        return self._record(
            "token.initialise",
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
        self.seal_with = (store, key.label)
        return self._record(
            "key.generate",
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
            "certificate.issue",
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
            "naming.check",
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
            "fingerprint.statement",
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
def _mechanism(token: Token) -> int:
    return int(token.wrap_mechanism, 16)


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
            "key.attributes",
            f"attributes of {spec.key_label!r} read before backup",
            self.operators,
            outputs={"public_key": _spki_sha256(self.public_key)},
            details={"key_label": spec.key_label, "attributes": attributes.record()},
            result=result,
        )
        if not attributes.extractable:
            raise TokenError(f"key {spec.key_label!r} was generated without a backup allowance; it cannot be wrapped")
        return entry

    def do_split_kek(self) -> dict[str, Any]:
        purpose = f"{self.spec.key_label}.kek"
        self.kek = new_secret(32)
        self.kek_kcv = kcv(self.kek)
        shares, cards = self._split(purpose, self.kek)
        self.kek_shares = shares
        return self._record(
            "custody.split",
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
        wrapped = self._key_store().wrap(spec.key_label, self.kek, _mechanism(self.token))
        del self.kek
        path = self.ws.root / self.expected_outputs()["backup"]
        write_once(path, wrapped, mode=0o600)
        public_der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        meta = {
            "ceremony_id": spec.ceremony_id,
            "rehearsal": self.rehearsal,
            "key_label": spec.key_label,
            "token": self.token.label,
            "key_store": self.ws.config.key_store.kind,
            "wrap_mechanism": self.token.wrap_mechanism,
            "kek_purpose": f"{spec.key_label}.kek",
            "kcv": self.kek_kcv,
            "quorum": {"m": self.quorum.m, "n": self.quorum.n},
            "shares": {s.custodian: s.fingerprint for s in self.kek_shares},
            "public_key": public_der.hex(),
            "wrapped_sha256": hashlib.sha256(wrapped).hexdigest(),
        }
        meta_path = path.with_name(path.name + ".json")
        write_once(meta_path, json.dumps(meta, indent=2).encode())
        return self._record(
            "key.wrap",
            f"key {spec.key_label!r} wrapped under the backup key ({self.token.wrap_mechanism})",
            self.operators,
            outputs={**self._output("backup", path), **self._output("backup_metadata", meta_path)},
            details={"key_label": spec.key_label, "attributes": self._key_store().attributes(spec.key_label).record()}
            | gate,
        )


class KeyRestore(Procedure):
    TYPE = "key-restore"
    SCRIPT = (
        ("initialise", "initialise the fresh token; split its PINs among the custodians"),
        ("rebuild-kek", "custodians present their backup-key shares; the backup key is rebuilt"),
        ("unwrap", "unwrap the CA key into the fresh token; read its attributes back"),
        ("prove", "sign a test message with the restored key; verify it under the CA certificate"),
    )

    def do_initialise(self) -> dict[str, Any]:
        record = self._new_token(self.token.label)
        return self._record(
            "token.initialise",
            f"fresh token {self.token.label!r} initialised for the restore",
            [self.spec.participants.administrator, *self.operators, *self.custodians],
            details={**record, "token_bag": self.spec.bags.tokens.get(self.token.label)},
        )

    def do_rebuild_kek(self) -> dict[str, Any]:
        spec: KeyRestoreCeremony = self.spec
        path = self.ws.root / spec.backup
        meta_path = path.with_name(path.name + ".json")
        if not path.is_file() or not meta_path.is_file():
            raise InputError(f"{self.ceremony.path}: backup: {spec.backup} (and its .json) not found in {self.ws.root}")
        self.backup = path.read_bytes()
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if hashlib.sha256(self.backup).hexdigest() != self.meta["wrapped_sha256"]:
            raise InputError(f"{spec.backup}: does not match the digest its backup ceremony recorded")
        presented = self.console.present_shares(
            self.meta["kek_purpose"], self.custodians, int(self.meta["quorum"]["m"])
        )
        self.kek = combine([words for _, words in presented])
        check = kcv(self.kek)
        entry = self._record(
            "custody.combine",
            f"backup key rebuilt from {len(presented)} shares (check value {check})",
            [c for c, _ in presented],
            inputs={"backup": _sha256_file(path), "backup_metadata": _sha256_file(meta_path)},
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
        gate = self._gate("unwrap", f"unwrap key {spec.key_label!r} into {self.token.label!r}", self.operators)
        store.unwrap(spec.key_label, self.backup, self.kek, _mechanism(self.token), public)  # type: ignore[arg-type]
        del self.kek
        attributes = store.attributes(spec.key_label)
        protected = attributes.sensitive and not attributes.extractable
        applicable = self.ws.config.key_store.kind == "pkcs11"
        self.seal_with = (store, spec.key_label)
        self.certificate = cert
        entry = self._record(
            "key.unwrap",
            f"key {spec.key_label!r} restored into token {self.token.label!r}",
            self.operators,
            details={
                "key_label": spec.key_label,
                "attributes": attributes.record(),
                "protection_check": ("ok" if protected else "failed")
                if applicable
                else "not applicable: a software store cannot keep a key sensitive",
                **gate,
            },
            result="ok" if protected or not applicable else "failed: the restored key is not SENSITIVE/non-extractable",
        )
        if applicable and not protected:
            raise TokenError(f"the restored key {spec.key_label!r} is not SENSITIVE and non-extractable")
        return entry

    def do_prove(self) -> dict[str, Any]:
        spec: KeyRestoreCeremony = self.spec
        message = f"restore test {spec.ceremony_id} {secrets.token_hex(16)}".encode()
        signature = sign(self._key_store().load(spec.key_label), message)
        ok = verifies(self.certificate.public_key(), signature, message)
        entry = self._record(
            "key.prove",
            f"test signature by the restored key verified under CA {spec.ca}'s certificate",
            [*self.operators, *self.spec.participants.witnesses],
            details={"message": message.decode(), "signature": signature.hex(), "verified": ok},
            result="ok" if ok else "failed: the signature does not verify",
        )
        if not ok:
            raise TokenError("the restored key's signature does not verify under the CA certificate")
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
            "key.identify",
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
        self.ws.journal.append(
            "key.destroyed",
            {
                "ceremony_id": spec.ceremony_id,
                "token_label": self.token.label,
                "key_label": spec.key_label,
                "public_key_sha256": self.public_sha256,
                "reason": spec.reason,
                "rehearsal": self.rehearsal,
            },
        )
        self.ws.__dict__.pop("destroyed_keys", None)
        entry = self._record(
            "key.destroy",
            f"key {spec.key_label!r} destroyed on token {self.token.label!r}: {spec.reason}",
            [*self.operators, *spec.participants.witnesses],
            details={"key_label": spec.key_label, "gone": gone, **gate},
            result="ok" if gone else "failed: the key is still on the token",
        )
        if not gone:
            raise TokenError(f"key {spec.key_label!r} is still on token {self.token.label!r} after destruction")
        return entry


# --- symmetric keys ----------------------------------------------------------------------------
class SymmetricKeys(Procedure):
    """AES keys for a symmetric-key S1SP: split-knowledge keys formed from XOR components, and keys
    generated on the token; every key checked by KCV and entered in the key inventory."""

    TYPE = "symmetric-key"
    SCRIPT = (
        ("activate", "custodians present their PIN shares; the token is activated"),
        ("components", "generate the split-knowledge keys and split them into components; each custodian "
         "receives and confirms one component card"),
        ("combine", "custodians enter their components at the token; each is checked by its KCV, then the "
         "combined key; keys without components are generated on the token"),
        ("register", "enter the keys in the key inventory with their crypto-periods and custody"),
    )  # fmt: skip

    def do_activate(self) -> dict[str, Any]:
        entry = self._activate(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        self.expected: dict[str, tuple[str, str, dict[str, str]]] = {}
        self.created: dict[str, dict[str, Any]] = {}
        return entry

    def do_components(self) -> dict[str, Any]:
        from ceremony.symmetric import kcv, new_key, parse_component, split, wipe, write_component_card

        record: dict[str, Any] = {}
        holders: set[str] = set()
        for spec in self.spec.keys:
            if not spec.components:
                continue
            key = new_key(spec.length)
            try:
                key_kcv, ecb = kcv(key, spec.kcv_method), kcv(key)
                components = split(key, spec.custodians, spec.kcv_method)
            finally:
                wipe(key)
            cards = {
                c.custodian: write_component_card(
                    self.ws.share_cards_dir, ceremony_id=self.spec.ceremony_id, key_label=spec.label, component=c,
                    of=spec.components, bag=self.spec.bags.share_cards.get(c.custodian),
                )
                for c in components
            }  # fmt: skip
            for c in components:
                entered = parse_component(self.console.reenter_component(c.custodian, cards[c.custodian]))
                if kcv(entered, spec.kcv_method) != c.kcv:
                    raise CustodyError(
                        f"{c.custodian}'s component of {spec.label} as typed back does not match its KCV"
                    )
                if not self.console.attended:
                    # Unattended runs: the component rests in secrets/ for the combine step to read.
                    directory = self.ws.secrets_dir / "components" / spec.label
                    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    write_private(directory / f"{c.custodian}.component", c.value.hex())
            self.expected[spec.label] = (key_kcv, ecb, {c.custodian: c.kcv for c in components})
            holders.update(spec.custodians)
            record[spec.label] = {
                "kcv": key_kcv,
                "kcv_method": spec.kcv_method,
                "components": {
                    c.custodian: {
                        "index": c.index,
                        "kcv": c.kcv,
                        "bag_sealed": self.spec.bags.share_cards.get(c.custodian),
                        "acknowledged": "re-entered and confirmed" if self.console.attended else "card read back",
                    }
                    for c in components
                },
                "deposited": None
                if self.console.attended
                else self._rel(self.ws.secrets_dir / "components" / spec.label),
            }
        return self._record(
            "components.generate",
            f"{len(record)} split-knowledge key(s) generated in memory, split into XOR components, clear keys wiped",
            [self.spec.participants.administrator, *sorted(holders)],
            details={"keys": record},
        )

    def do_combine(self) -> dict[str, Any]:
        from ceremony.symmetric import combine, parse_component, wipe

        store = self._key_store()
        record: dict[str, Any] = {}
        for spec in self.spec.keys:
            purpose = "kek" if spec.purpose in ("kek", "transport-kek") else "data"
            if spec.components:
                key_kcv, ecb, by_holder = self.expected[spec.label]
                entered = [(c, parse_component(self.console.present_component(spec.label, c))) for c in spec.custodians]
                key = combine(entered, by_holder, key_kcv, spec.kcv_method)
                try:
                    token_kcv = store.import_secret(spec.label, key, purpose=purpose, extractable=spec.wrapped_export)
                finally:
                    wipe(key)
                if token_kcv != ecb:
                    store.destroy_secret(spec.label)
                    raise TokenError(f"the token's KCV of {spec.label} differs from the combined key's; key removed")
                origin = "components"
                # Components deposited for this unattended run have served: only the cards remain.
                shutil.rmtree(self.ws.secrets_dir / "components" / spec.label, ignore_errors=True)
            else:
                gate = self._gate(
                    "combine", f"generate {spec.algorithm} key {spec.label!r} on the token", self.operators
                )
                key_kcv = store.generate_secret(
                    spec.label, spec.length, purpose=purpose, extractable=spec.wrapped_export
                )
                origin = "token"
                record.setdefault("_gates", {})[spec.label] = gate
            attributes = store.secret_attributes(spec.label).record()
            self.created[spec.label] = {"kcv": key_kcv, "origin": origin}
            record[spec.label] = {
                "kcv": key_kcv,
                "origin": origin,
                "token_kcv_checked": origin == "components",
                "attributes": attributes,
                "bags_unsealed": {c: self.spec.bags.share_cards.get(c) for c in spec.custodians},
            }
        gates = record.pop("_gates", {})
        return self._record(
            "keys.create",
            f"{len(record)} key(s) on token {self.token.label!r}, each checked by KCV",
            [*self.operators, *sorted({c for k in self.spec.keys for c in k.custodians})],
            details={"keys": record, **({"gates": gates} if gates else {})},
        )

    def do_register(self) -> dict[str, Any]:
        from datetime import timedelta

        now = datetime.now(timezone.utc).replace(microsecond=0)
        rows = []
        with self.ws.inventory.transaction() as db:
            for spec in self.spec.keys:
                made = self.created[spec.label]
                row = (
                    spec.label, self.token.label, spec.algorithm, spec.length * 8, made["kcv"], spec.kcv_method,
                    spec.purpose, made["origin"], "active", now.isoformat(), now.isoformat(),
                    (now + timedelta(days=spec.rotation_days)).isoformat(),
                    (now + timedelta(days=spec.crypto_period_days)).isoformat(), None, None, spec.serves,
                    int(spec.wrapped_export), self.spec.ceremony_id,
                )  # fmt: skip
                db.execute(f"INSERT INTO symmetric_keys VALUES ({', '.join('?' for _ in row)})", row)  # noqa: S608
                for index, custodian in enumerate(spec.custodians, start=1):
                    bag = self.spec.bags.share_cards.get(custodian)
                    component_kcv = self.expected[spec.label][2][custodian]
                    db.execute(
                        "INSERT INTO key_custody VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (spec.label, index, custodian, component_kcv, bag, bag, self.spec.ceremony_id),
                    )
                rows.append({"label": spec.label, "kcv": made["kcv"], "expires": row[12]})
            self.ws.journal.append(
                "symmetric.create", {"ceremony_id": self.spec.ceremony_id, "token": self.token.label, "keys": rows}
            )
        return self._record(
            "keys.register",
            f"{len(rows)} key(s) entered in the key inventory (state active)",
            [self.spec.participants.administrator],
            details={"keys": rows},
        )


class KeyRotation(Procedure):
    """A successor for a symmetric key: generated on the token, every dependant the old key wrapped for
    export re-wrapped under it, the old key deactivated, the lineage recorded."""

    TYPE = "key-rotation"
    SCRIPT = (
        ("activate", "custodians present their PIN shares; the token is activated"),
        ("successor", "generate the successor on the token, as the key it replaces"),
        ("rewrap", "re-wrap under the successor every key the old key wrapped for export"),
        ("retire", "deactivate the old key; record the lineage"),
    )

    def do_activate(self) -> dict[str, Any]:
        entry = self._activate(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        return entry

    def _row(self, label: str) -> dict[str, Any]:
        row = self.ws.inventory.execute("SELECT * FROM symmetric_keys WHERE label = ?", (label,)).fetchone()
        if row is None:
            raise InputError(f"{self.ceremony.path}: key_label: no symmetric key {label!r} in the key inventory")
        return dict(row)

    def do_successor(self) -> dict[str, Any]:
        from datetime import timedelta

        old = self._row(self.spec.key_label)
        if old["state"] != "active":
            raise StateError(f"{old['label']} is {old['state']}; only an active key is rotated")
        purpose = "kek" if old["purpose"] in ("kek", "transport-kek") else "data"
        gate = self._gate("successor", f"generate {old['algorithm']} key {self.spec.successor_label!r}", self.operators)
        kcv = self._key_store().generate_secret(
            self.spec.successor_label, old["length"] // 8, purpose=purpose, extractable=bool(old["wrapped_export"])
        )
        now = datetime.now(timezone.utc).replace(microsecond=0)
        row = (
            self.spec.successor_label, self.token.label, old["algorithm"], old["length"], kcv, "ecb", old["purpose"],
            "token", "active", now.isoformat(), now.isoformat(),
            (now + timedelta(days=self.spec.rotation_days)).isoformat(),
            (now + timedelta(days=self.spec.crypto_period_days)).isoformat(), old["wrapped_by"], old["label"],
            old["serves"], old["wrapped_export"], self.spec.ceremony_id,
        )  # fmt: skip
        with self.ws.inventory.transaction() as db:
            db.execute(f"INSERT INTO symmetric_keys VALUES ({', '.join('?' for _ in row)})", row)  # noqa: S608
        self.old, self.successor_kcv = old, kcv
        return self._record(
            "key.successor",
            f"successor {self.spec.successor_label!r} of {old['label']!r} generated on the token",
            self.operators,
            details={
                "key": self.spec.successor_label,
                "predecessor": old["label"],
                "kcv": kcv,
                "attributes": self._key_store().secret_attributes(self.spec.successor_label).record(),
                **gate,
            },
        )

    def do_rewrap(self) -> dict[str, Any]:
        from ceremony.keys import export_key

        old = self.old["label"]
        dependants = [
            r[0]
            for r in self.ws.inventory.execute(
                "SELECT DISTINCT w.key_label FROM key_wraps w JOIN symmetric_keys k ON k.label = w.key_label "
                "WHERE w.kek_label = ? AND w.direction IN ('export', 'rewrap') AND k.state = 'active' "
                "AND k.wrapped_export = 1 ORDER BY w.key_label",
                (old,),
            )
        ]
        outputs: dict[str, str] = {}
        for label in dependants:
            out = self.ws.artifacts_dir / "keys" / f"{label}.under.{self.spec.successor_label}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            export_key(
                self.ws, label, self.spec.successor_label, out, direction="rewrap", ceremony_id=self.spec.ceremony_id
            )
            outputs.update(self._output(f"{label} under {self.spec.successor_label}", out))
        return self._record(
            "keys.rewrap",
            f"{len(dependants)} dependant(s) of {old!r} re-wrapped under {self.spec.successor_label!r}",
            self.operators,
            outputs=outputs,
            details={"dependants": dependants},
        )

    def do_retire(self) -> dict[str, Any]:
        with self.ws.inventory.transaction() as db:
            db.execute("UPDATE symmetric_keys SET state = 'deactivated' WHERE label = ?", (self.old["label"],))
            self.ws.journal.append(
                "key.rotate",
                {
                    "ceremony_id": self.spec.ceremony_id,
                    "key": self.old["label"],
                    "successor": self.spec.successor_label,
                    "kcv": self.successor_kcv,
                },
            )
        return self._record(
            "key.retire",
            f"{self.old['label']!r} deactivated; {self.spec.successor_label!r} succeeds it",
            [self.spec.participants.administrator, *self.spec.participants.witnesses],
            details={"deactivated": self.old["label"], "successor": self.spec.successor_label},
        )


PROCEDURES: dict[str, type[Procedure]] = {
    p.TYPE: p for p in (TokenInit, RootCA, IssuingCA, KeyBackup, KeyRestore, KeyDestruction, SymmetricKeys, KeyRotation)
}


# --- opening a ceremony -------------------------------------------------------------------------
def rehearsal_area(live: Workspace) -> Workspace:
    """The rehearsal area of ``live``: its own workspace and throwaway token, created on first use."""
    area = live.rehearsal_dir
    if (area / "workspace.yaml").exists():
        return Workspace.open(area)
    ws = init_workspace(
        area,
        key_store=live.config.key_store.kind,
        token_label=live.token_label or "rehearsal",
        initialise_token=False,
    )
    return ws


def default_workspace() -> Path:
    return Path(os.environ.get("CEREMONY_WORKSPACE") or "workspace")


def begin(
    ceremony_file: str | Path | None = None,
    workspace: str | Path | None = None,
    *,
    rehearsal: bool = False,
    register: str | Path | None = None,
    console: Console | None = None,
    expect: str | None = None,
) -> Procedure:
    """Open a ceremony: load and pre-flight the file, check approvals, pick the live workspace or
    the rehearsal area, and write the transcript's first entry.

    A live run refuses a file without the policy's approvals; a rehearsal runs anyway and says so.
    """
    if ceremony_file is None:
        if expect is None:
            raise InputError("give the ceremony file")
        ceremony_file = data_dir() / "ceremonies" / f"{expect}.yaml"
    ceremony = load_ceremony(Path(ceremony_file))
    kind = ceremony.spec.type  # type: ignore[attr-defined]
    if expect is not None and kind != expect:
        raise InputError(f"{ceremony.path}: type: this procedure runs {expect} ceremonies, not {kind}")
    live = Workspace.open(Path(workspace) if workspace is not None else default_workspace())
    policy = load_policy()
    try:
        preflight(ceremony, load_register(Path(register) if register else default_register(live.root)), policy)
    except BaseException:
        live.close()
        raise
    approved_by = approvals(live.journal.entries(), ceremony.sha256)
    if not rehearsal:
        require_approvals(ceremony, approved_by, policy, rehearsal=False)
    ws = rehearsal_area(live) if rehearsal else live
    if ws is not live:
        live.close()
    procedure = PROCEDURES[kind](
        ceremony,
        ws,
        rehearsal=rehearsal,
        console=console or kernel_console(ws),
        approved_by=approved_by,
        policy=policy,
    )
    procedure.start()
    return procedure


def run(
    ceremony_file: str | Path,
    workspace: str | Path | None = None,
    *,
    rehearsal: bool = False,
    register: str | Path | None = None,
    console: Console | None = None,
) -> Outcome:
    """Run a whole ceremony (every step, then the seal); the transcript survives an interruption."""
    procedure = begin(ceremony_file, workspace, rehearsal=rehearsal, register=register, console=console)
    try:
        return procedure.run()
    finally:
        procedure.ws.close()


def _runner(kind: str) -> Any:
    def run_kind(ceremony_file: str | Path | None = None, workspace: str | Path | None = None, **kw: Any) -> Outcome:
        procedure = begin(ceremony_file, workspace, expect=kind, **kw)
        try:
            return procedure.run()
        finally:
            procedure.ws.close()

    run_kind.__name__ = kind.replace("-", "_")
    run_kind.__doc__ = f"Run a {kind} ceremony from its file (every step, then the seal)."
    return run_kind


#: One function per ceremony type, for the CLI and scripts.
token_init = _runner("token-init")
root_ca = _runner("root-ca")
issuing_ca = _runner("issuing-ca")
key_backup = _runner("key-backup")
key_restore = _runner("key-restore")
key_destruction = _runner("key-destruction")
symmetric_keys = _runner("symmetric-key")
key_rotation = _runner("key-rotation")
