"""The custodian change of a CA key's backup: the backup re-wrapped under a new backup key, on a scratch token.

A backup key (KEK) whose shares a leaver held, or whose old cards may have been copied, is not made safe by
handing out new cards for it: the old blob and m old cards would still rebuild the CA key. So the secret itself
is rotated. The old backup is restored into a scratch token (the live key stays non-extractable: issue I), the
copy there is wrapped under a new KEK split among the new custodians, the new backup is restore-tested from a
quorum of the new shares, both copies on the scratch token are destroyed under witness, and the old blob and its
cards are recorded retired (``read_backup`` refuses a retired blob from then on). docs/security.md says what an
old blob and copied old cards can still do.
"""

from __future__ import annotations

import secrets
from typing import Any

from cryptography import x509

from ceremony.errors import ConfigError, StateError, TokenError
from ceremony.fs import sha256_file
from ceremony.keys.custody import CustodyError, kcv, new_secret, share_fingerprint, withdraw
from ceremony.keys.signatures import sign, verifies
from ceremony.keys.store import choose_wrap_mechanism, export_control
from ceremony.model.ceremony_file import BackupRewrapCeremony
from ceremony.model.events import Action, KeyDestroyed
from ceremony.procedures.asymmetric import (
    Backup,
    _mechanism_record,
    _requested,
    backup_mechanism,
    read_backup,
    write_backup,
)
from ceremony.procedures.base import SEAL_KEY, Procedure, _spki_sha256

#: The label of the new backup's restore-test copy on the scratch token.
TEST_SUFFIX = ".restore-test"


class BackupRewrap(Procedure):
    TYPE = "backup-rewrap"
    SCRIPT = (
        ("initialise", "initialise the scratch token; split its PINs among the custodians"),
        ("rebuild-old-kek", "holders of the old backup key's shares present them; the old backup key is rebuilt"),
        ("unwrap", "the old backup restored into the scratch token (exportable there, for the re-wrap only)"),
        ("split-kek", "a new backup key generated and split among the new custodians, who confirm their cards"),
        ("wrap", "the key wrapped under the new backup key; the new backup written"),
        ("restore-test", "a quorum of the new shares rebuilds the new key; the new backup restores and signs"),
        ("destroy-copies", "both copies of the key on the scratch token destroyed under witness; shown gone"),
        ("retire", "the old backup recorded retired; its share cards destroyed under witness, bags recorded"),
    )

    def expected_outputs(self) -> dict[str, str]:
        spec: BackupRewrapCeremony = self.spec
        backup = f"artifacts/backups/{spec.key_label}.{spec.ceremony_id}.wrapped"
        return {"backup": backup, "backup_metadata": f"{backup}.json"}

    def check(self) -> None:
        super().check()
        spec: BackupRewrapCeremony = self.spec
        src = self.ceremony.path
        if self.token.label == self.ws.token_label:
            raise ConfigError(
                f"{src}: token.label: {self.token.label!r} is the live token; a re-wrap restores the backup into a "
                "scratch token of its own (the live key stays non-extractable)"
            )
        if self.ws.token_exists(self.token.label):
            raise StateError(
                f"{src}: token.label: token {self.token.label!r} already exists in {self.ws.root}; a re-wrap "
                "initialises a fresh scratch token: name another"
            )
        old = read_backup(self.ws, spec.backup, str(src))
        holders = set(old.meta.get("shares") or {})
        seated = set(self.custodians)
        m = int(old.meta["quorum"]["m"])
        present = holders & seated
        if len(present) < m:
            raise ConfigError(
                f"{src}: participants.custodians: {len(present)} of the old backup key's holders "
                f"({', '.join(sorted(holders))}; {m} needed, split by {old.meta.get('ceremony_id')}) are seated"
            )
        for i, pid in enumerate(spec.leaving):
            if pid not in holders:
                raise ConfigError(f"{src}: leaving[{i}]: {pid} holds no share of {spec.backup}'s backup key")
        unaccounted = sorted(holders - seated - set(spec.leaving))
        if unaccounted:
            raise ConfigError(
                f"{src}: participants.custodians: {', '.join(unaccounted)} hold(s) a share of the old backup key; "
                "seat them (their old cards are retired here) or list them under leaving"
            )
        if old.meta.get("key_label") != spec.key_label:
            raise ConfigError(
                f"{src}: key_label: {spec.backup} is a backup of {old.meta.get('key_label')!r}, not {spec.key_label!r}"
            )

    # --- the steps ---------------------------------------------------------------------------
    def do_initialise(self) -> dict[str, Any]:
        record = self._new_token(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        return self._record(
            Action.TOKEN_INITIALISE,
            f"scratch token {self.token.label!r} initialised for the re-wrap",
            [self.spec.participants.administrator, *self.operators, *self.custodians],
            details={**record, "token_bag": self.spec.bags.tokens.get(self.token.label), "scratch": True},
        )

    def do_rebuild_old_kek(self) -> dict[str, Any]:
        spec: BackupRewrapCeremony = self.spec
        self.old: Backup = read_backup(self.ws, spec.backup, str(self.ceremony.path))
        meta = self.old.meta
        recorded: dict[str, str] = dict(meta.get("shares") or {})
        holders = [c for c in sorted(recorded) if c in self.custodians]
        presented = self.console.present_shares(str(meta["kek_purpose"]), holders, int(meta["quorum"]["m"]))
        for custodian, words in presented:
            if recorded.get(custodian) != share_fingerprint(words):
                raise CustodyError(
                    f"{custodian}'s share is not the one the backup {spec.backup} recorded for them "
                    f"({meta.get('ceremony_id')})",
                    custodian=custodian,
                )
        secret, presented, retyped = self._rebuild(str(meta["kek_purpose"]), presented, recorded)
        self.old_kek = secret
        check = kcv(secret)
        entry = self._record(
            Action.CUSTODY_COMBINE,
            f"the old backup key rebuilt from {len(presented)} shares; its check value matches the backup's",
            [c for c, _ in presented],
            inputs={"backup": sha256_file(self.old.path), "backup_metadata": sha256_file(self.old.meta_path)},
            details={
                "shares_presented": {c: share_fingerprint(w) for c, w in presented},
                "kcv": check,
                "expected": meta["kcv"],
                "split_by": meta.get("ceremony_id"),
                **({"retyped": retyped} if retyped else {}),
            },
            result="ok" if check == meta["kcv"] else "failed: check value differs",
        )
        if check != meta["kcv"]:
            raise CustodyError("the shares rebuild a different key (its check value differs from the backup's)")
        return entry

    def do_unwrap(self) -> dict[str, Any]:
        spec: BackupRewrapCeremony = self.spec
        store = self._key_store()
        from cryptography.hazmat.primitives import serialization

        public = serialization.load_der_public_key(bytes.fromhex(self.old.meta["public_key"]))
        self.certificate = x509.load_der_x509_certificate(self.ws.inventory.ca_certificate_der(spec.ca))
        if self.certificate.public_key() != public:
            raise StateError(f"{spec.backup}: the backup is not of CA {spec.ca}'s key")
        self.public_key = public
        self.old_mechanism = backup_mechanism(store, self.old.meta, self.token, str(self.ceremony.path), spec.backup)
        gate = self._gate(
            "unwrap", f"restore {spec.key_label!r} into the scratch token {self.token.label!r}", self.operators
        )
        store.unwrap(spec.key_label, self.old.wrapped, self.old_kek, self.old_mechanism or 0, public,  # type: ignore[arg-type]
                     extractable=True)  # fmt: skip
        del self.old_kek
        self._key_on_record(spec.key_label, public, purpose="ca", origin="unwrapped")
        attributes = store.attributes(spec.key_label)
        return self._record(
            Action.KEY_UNWRAP,
            f"key {spec.key_label!r} restored into the scratch token {self.token.label!r}, exportable there only "
            "for the re-wrap",
            self.operators,
            details={
                "key_label": spec.key_label,
                "attributes": attributes.record(),
                "scratch_copy": True,
                **_mechanism_record(self.old_mechanism),
                **gate,
            },
        )

    def do_split_kek(self) -> dict[str, Any]:
        spec: BackupRewrapCeremony = self.spec
        purpose = f"{spec.key_label}.kek"
        self.kek = new_secret(32)
        self.kek_kcv = kcv(self.kek)
        shares, cards = self._split(purpose, self.kek)
        self.kek_shares = shares
        if not self.console.attended:
            withdraw(self.ws.shares_dir(purpose))  # the old key's shares rest no more (trial runs only hold any)
        return self._record(
            Action.CUSTODY_SPLIT,
            f"a new 256-bit backup key generated and split {self.quorum.m}-of-{self.quorum.n} among "
            f"{', '.join(self.custodians)}",
            [spec.participants.administrator, *self.custodians],
            details={
                **self._split_record(purpose, shares),
                "kcv": self.kek_kcv,
                "reason": spec.reason,
                "acknowledged": self._distribute(shares, cards),
                **self._deposit(purpose, shares),
            },
        )

    def do_wrap(self) -> dict[str, Any]:
        spec: BackupRewrapCeremony = self.spec
        store = self._key_store()
        offered = export_control(store).wrap_mechanisms()
        self.mechanism = (
            None if offered is None else choose_wrap_mechanism(offered, _requested(self.token), token=self.token.label)
        )
        gate = self._gate("wrap", f"wrap {spec.key_label!r} under the new backup key", self.operators)
        wrapped = store.wrap(spec.key_label, self.kek, self.mechanism or 0)
        del self.kek
        path = self.ws.root / self.expected_outputs()["backup"]
        supersedes = {
            "backup": spec.backup,
            "wrapped_sha256": self.old.meta["wrapped_sha256"],
            "ceremony_id": self.old.meta.get("ceremony_id"),
            "old_kcv": self.old.meta.get("kcv"),
        }
        meta_path = write_backup(self, path, wrapped, public_key=self.public_key, mechanism=self.mechanism,
                                 kcv=self.kek_kcv, shares=self.kek_shares, supersedes=supersedes)  # fmt: skip
        self.new_path = path
        how = _mechanism_record(self.mechanism)
        return self._record(
            Action.KEY_WRAP,
            f"key {spec.key_label!r} wrapped under the new backup key ({how['wrap_mechanism_name']}); it replaces "
            f"{spec.backup}",
            self.operators,
            outputs={**self._output("backup", path), **self._output("backup_metadata", meta_path)},
            details={"key_label": spec.key_label, "supersedes": supersedes, **how, **gate},
        )

    def do_restore_test(self) -> dict[str, Any]:
        """The new backup restored from a quorum of the NEW shares (presented again, not the key in memory) under a
        test label, non-extractable, and proven by a signature that verifies under the CA certificate."""
        spec: BackupRewrapCeremony = self.spec
        store = self._key_store()
        purpose = f"{spec.key_label}.kek"
        new = read_backup(self.ws, self.expected_outputs()["backup"], str(self.ceremony.path))
        recorded = dict(new.meta["shares"])
        presented = self.console.present_shares(purpose, list(self.custodians), self.quorum.m)
        kek, presented, _ = self._rebuild(purpose, presented, recorded)
        if kcv(kek) != new.meta["kcv"]:
            raise CustodyError("the new shares rebuild a different key (its check value differs from the backup's)")
        label = spec.key_label + TEST_SUFFIX
        store.unwrap(label, new.wrapped, kek, self.mechanism or 0, self.public_key)  # type: ignore[arg-type]
        del kek
        self._key_on_record(label, self.public_key, purpose="ca", origin="unwrapped")
        message = f"restore test {spec.ceremony_id} {secrets.token_hex(16)}".encode()
        signature = sign(store.load(label), message)
        ok = verifies(self.certificate.public_key(), signature, message)
        entry = self._record(
            Action.KEY_PROVE,
            f"the new backup restored from {len(presented)} new shares; its test signature verified under CA "
            f"{spec.ca}'s certificate",
            [*(c for c, _ in presented), *self.operators, *spec.participants.witnesses],
            inputs={"backup": sha256_file(new.path)},
            details={
                "key_label": label,
                "shares_presented": {c: share_fingerprint(w) for c, w in presented},
                "kcv": new.meta["kcv"],
                "attributes": store.attributes(label).record(),
                "message": message.decode(),
                "signature": signature.hex(),
                "verified": ok,
            },
            result="ok" if ok else "failed: the signature does not verify",
        )
        if not ok:
            raise TokenError("the re-wrapped backup's key does not verify under the CA certificate")
        return entry

    def do_destroy_copies(self) -> dict[str, Any]:
        spec: BackupRewrapCeremony = self.spec
        store = self._key_store()
        labels = [spec.key_label, spec.key_label + TEST_SUFFIX]
        gate = self._gate(
            "destroy-copies",
            f"destroy both copies of {spec.key_label!r} on the scratch token {self.token.label!r}",
            spec.participants.witnesses,
        )
        public_sha256 = _spki_sha256(self.public_key)
        for label in labels:
            store.destroy(label)
        remaining = sorted(set(labels) & set(store.labels()))
        now = self.ws.clock.now().isoformat(timespec="microseconds")
        with self.ws.inventory.transaction() as db:
            for label in labels:
                if label not in remaining:
                    self.ws.inventory.key_destroyed(db, self.token.label, label, now)
        for label in labels:
            self.ws.journal.append(
                KeyDestroyed(
                    ceremony_id=spec.ceremony_id,
                    token_label=self.token.label,
                    key_label=label,
                    public_key_sha256=public_sha256,
                    reason="backup re-wrap: the scratch token's copy",
                    rehearsal=self.rehearsal,
                ),
            )
        self.ws.__dict__.pop("destroyed_keys", None)
        entry = self._record(
            Action.KEY_DESTROY,
            f"both copies of {spec.key_label!r} on the scratch token {self.token.label!r} destroyed; the token keeps "
            "only its ceremony-seal key",
            [*self.operators, *spec.participants.witnesses],
            details={"key_labels": labels, "gone": not remaining, "remaining": remaining, **gate},
            result="ok" if not remaining else "failed: still on the token: " + ", ".join(remaining),
        )
        if remaining:
            raise TokenError(f"{', '.join(remaining)} still on token {self.token.label!r} after destruction")
        return entry

    def do_retire(self) -> dict[str, Any]:
        """The old blob recorded retired (restores refuse it from now on), and its cards: destroyed under witness
        when their holder is seated; a leaver's, not handed back, recorded as such."""
        spec: BackupRewrapCeremony = self.spec
        witnesses = spec.participants.witnesses
        gate = self._gate("retire", "the old backup's share cards are destroyed in front of the witnesses", witnesses)
        meta = self.old.meta
        purpose = str(meta["kek_purpose"])
        bags = self._old_bags(purpose, str(meta.get("ceremony_id")))
        cards = {
            c: {
                "fingerprint": fp,
                "bag": bags.get(c),
                "state": "not handed back: the holder left" if c in spec.leaving else "destroyed",
            }
            for c, fp in sorted((meta.get("shares") or {}).items())
        }
        retired = {purpose: {"split_by": meta.get("ceremony_id"), "cards": cards}}
        blob = {
            "backup": spec.backup,
            "wrapped_sha256": meta["wrapped_sha256"],
            "ceremony_id": meta.get("ceremony_id"),
            "replaced_by": self.expected_outputs()["backup"],
            "state": "retired: restores refuse it; off-site copies are to be destroyed and their destruction recorded",
        }
        return self._record(
            Action.CARDS_RETIRE,
            f"the old backup {spec.backup} retired; {len(cards)} card(s) of {meta.get('ceremony_id')} retired",
            witnesses,
            details={"retired": retired, "backup_retired": blob, "leaving": list(spec.leaving), **gate},
        )

    def _old_bags(self, purpose: str, split_by: str) -> dict[str, str | None]:
        """The bag numbers the old split's ceremony recorded for its cards (its transcript's split step)."""
        from ceremony.record.transcript import read_entries

        path = self.ws.transcripts_dir / f"{split_by}.jsonl"
        if not path.is_file():
            return {}
        for entry in reversed(read_entries(path)):
            details = entry.get("details") or {}
            if details.get("purpose") == purpose and isinstance(details.get("share_card_bags"), dict):
                return dict(details["share_card_bags"])
        return {}
