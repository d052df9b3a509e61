"""Symmetric-key ceremonies: keys from XOR components or generated on the token, and their rotation.

They run like every other ceremony (ceremony/procedures.py): one step per notebook cell, a
hash-chained transcript sealed with the token's ceremony-seal key.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ceremony.errors import InputError, StateError, TokenError
from ceremony.fs import make_dirs, write_private
from ceremony.keys.custody import CustodyError
from ceremony.model.events import Action, KeyRotate, SymmetricCreate
from ceremony.procedures.base import SEAL_KEY, Procedure
from ceremony.record.symmetric_keys import (
    CustodyRecord,
    SymmetricKeyRecord,
    add_custody,
    add_symmetric_key,
    deactivate_symmetric_key,
    keys_wrapped_under,
    symmetric_key,
)


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

    def check(self) -> None:
        """Pre-flight: every key's label is new to the key inventory (a taken one fails only after the
        components were handed out, otherwise)."""
        super().check()
        for i, spec in enumerate(self.spec.keys):
            if symmetric_key(self.ws.inventory, spec.label) is not None:
                raise StateError(
                    f"{self.ceremony.path}: keys[{i}].label: a key labelled {spec.label!r} is already in the key "
                    "inventory; give the key another label"
                )

    def do_activate(self) -> dict[str, Any]:
        entry = self._activate(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        self.expected: dict[str, tuple[str, str, dict[str, str]]] = {}
        self.created: dict[str, dict[str, Any]] = {}
        return entry

    def do_components(self) -> dict[str, Any]:
        from ceremony.keys.symmetric import kcv, new_key, parse_component, split, wipe, write_component_card

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

            def card(c: Any, label: str = spec.label, of: int = spec.components) -> Path:
                return write_component_card(
                    self.ws.share_cards_dir, ceremony_id=self.spec.ceremony_id, key_label=label, component=c,
                    of=of, bag=self.spec.bags.share_cards.get(c.custodian),
                )  # fmt: skip

            # A live workspace writes each card in turn and removes it once typed back: never all at rest.
            cards = {} if self.live else {c.custodian: card(c) for c in components}
            for c in components:
                path = cards.get(c.custodian) or card(c)
                try:
                    entered = parse_component(self.console.reenter_component(c.custodian, path))
                    if kcv(entered, spec.kcv_method) != c.kcv:
                        raise CustodyError(
                            f"{c.custodian}'s component of {spec.label} as typed back does not match its KCV"
                        )
                finally:
                    if self.live:
                        path.unlink(missing_ok=True)
                if not self.console.attended:
                    # Unattended runs: the component rests in secrets/ for the combine step to read.
                    directory = self.ws.secrets_dir / "components" / spec.label
                    make_dirs(directory, private=True)
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
            Action.COMPONENTS_GENERATE,
            f"{len(record)} split-knowledge key(s) generated in memory, split into XOR components, clear keys wiped",
            [self.spec.participants.administrator, *sorted(holders)],
            details={"keys": record},
        )

    def do_combine(self) -> dict[str, Any]:
        from ceremony.keys.symmetric import combine, parse_component, wipe

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
            Action.KEYS_CREATE,
            f"{len(record)} key(s) on token {self.token.label!r}, each checked by KCV",
            [*self.operators, *sorted({c for k in self.spec.keys for c in k.custodians})],
            details={"keys": record, **({"gates": gates} if gates else {})},
        )

    def do_register(self) -> dict[str, Any]:
        from datetime import timedelta

        now = self.ws.clock.now().replace(microsecond=0)
        rows = []
        with self.ws.inventory.transaction() as db:
            for spec in self.spec.keys:
                made = self.created[spec.label]
                key = SymmetricKeyRecord(
                    label=spec.label, token=self.token.label, algorithm=spec.algorithm, length=spec.length * 8,
                    kcv=made["kcv"], kcv_method=spec.kcv_method, purpose=spec.purpose, origin=made["origin"],
                    state="active", created_at=now.isoformat(), activated_at=now.isoformat(),
                    rotation_due=(now + timedelta(days=spec.rotation_days)).isoformat(),
                    expires_at=(now + timedelta(days=spec.crypto_period_days)).isoformat(), wrapped_by=None,
                    predecessor=None, serves=spec.serves, wrapped_export=int(spec.wrapped_export),
                    ceremony_id=self.spec.ceremony_id,
                )  # fmt: skip
                add_symmetric_key(db, key)
                for index, custodian in enumerate(spec.custodians, start=1):
                    bag = self.spec.bags.share_cards.get(custodian)
                    component_kcv = self.expected[spec.label][2][custodian]
                    add_custody(
                        db, CustodyRecord(spec.label, index, custodian, component_kcv, bag, bag, self.spec.ceremony_id)
                    )
                rows.append({"label": spec.label, "kcv": made["kcv"], "expires": key.expires_at})
            self.ws.journal.append(
                SymmetricCreate(ceremony_id=self.spec.ceremony_id, token=self.token.label, keys=rows)
            )
        return self._record(
            Action.KEYS_REGISTER,
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

    def check(self) -> None:
        """Pre-flight: the key to rotate is on record and its successor's label is new."""
        super().check()
        self._row(self.spec.key_label)
        if symmetric_key(self.ws.inventory, self.spec.successor_label) is not None:
            raise StateError(
                f"{self.ceremony.path}: successor_label: a key labelled {self.spec.successor_label!r} is already in "
                "the key inventory; give the successor another label"
            )

    def do_activate(self) -> dict[str, Any]:
        entry = self._activate(self.token.label)
        self.seal_with = (self._key_store(), SEAL_KEY)
        return entry

    def _row(self, label: str) -> SymmetricKeyRecord:
        row = symmetric_key(self.ws.inventory, label)
        if row is None:
            raise InputError(f"{self.ceremony.path}: key_label: no symmetric key {label!r} in the key inventory")
        return row

    def do_successor(self) -> dict[str, Any]:
        from datetime import timedelta

        old = self._row(self.spec.key_label)
        if old.state != "active":
            raise StateError(f"{old.label} is {old.state}; only an active key is rotated")
        purpose = "kek" if old.purpose in ("kek", "transport-kek") else "data"
        gate = self._gate("successor", f"generate {old.algorithm} key {self.spec.successor_label!r}", self.operators)
        kcv = self._key_store().generate_secret(
            self.spec.successor_label, old.length // 8, purpose=purpose, extractable=bool(old.wrapped_export)
        )
        now = self.ws.clock.now().replace(microsecond=0)
        successor = SymmetricKeyRecord(
            label=self.spec.successor_label, token=self.token.label, algorithm=old.algorithm, length=old.length,
            kcv=kcv, kcv_method="ecb", purpose=old.purpose, origin="token", state="active",
            created_at=now.isoformat(), activated_at=now.isoformat(),
            rotation_due=(now + timedelta(days=self.spec.rotation_days)).isoformat(),
            expires_at=(now + timedelta(days=self.spec.crypto_period_days)).isoformat(), wrapped_by=old.wrapped_by,
            predecessor=old.label, serves=old.serves, wrapped_export=old.wrapped_export,
            ceremony_id=self.spec.ceremony_id,
        )  # fmt: skip
        with self.ws.inventory.transaction() as db:
            add_symmetric_key(db, successor)
        self.old, self.successor_kcv = old, kcv
        return self._record(
            Action.KEY_SUCCESSOR,
            f"successor {self.spec.successor_label!r} of {old.label!r} generated on the token",
            self.operators,
            details={
                "key": self.spec.successor_label,
                "predecessor": old.label,
                "kcv": kcv,
                "attributes": self._key_store().secret_attributes(self.spec.successor_label).record(),
                **gate,
            },
        )

    def do_rewrap(self) -> dict[str, Any]:
        from ceremony.issue.key_transfer import export_key

        old = self.old.label
        dependants = keys_wrapped_under(self.ws.inventory, old)
        outputs: dict[str, str] = {}
        for label in dependants:
            out = self.ws.artifacts_dir / "keys" / f"{label}.under.{self.spec.successor_label}.json"
            make_dirs(out.parent)
            export_key(
                self.ws, label, self.spec.successor_label, out, direction="rewrap", ceremony_id=self.spec.ceremony_id
            )
            outputs.update(self._output(f"{label} under {self.spec.successor_label}", out))
        return self._record(
            Action.KEYS_REWRAP,
            f"{len(dependants)} dependant(s) of {old!r} re-wrapped under {self.spec.successor_label!r}",
            self.operators,
            outputs=outputs,
            details={"dependants": dependants},
        )

    def do_retire(self) -> dict[str, Any]:
        with self.ws.inventory.transaction() as db:
            deactivate_symmetric_key(db, self.old.label)
            self.ws.journal.append(
                KeyRotate(
                    ceremony_id=self.spec.ceremony_id,
                    key=self.old.label,
                    successor=self.spec.successor_label,
                    kcv=self.successor_kcv,
                ),
            )
        return self._record(
            Action.KEY_RETIRE,
            f"{self.old.label!r} deactivated; {self.spec.successor_label!r} succeeds it",
            [self.spec.participants.administrator, *self.spec.participants.witnesses],
            details={"deactivated": self.old.label, "successor": self.spec.successor_label},
        )
