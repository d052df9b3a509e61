"""Token PIN ceremonies: a PIN change by the users' quorum (C_SetPIN) and an SO reset of the user PIN (C_InitPIN).

Either way the new PIN is generated on the spot, never shown whole, split m-of-n among the custodians the
ceremony file seats (a custodian change when they differ from the holders of the current shares) and
confirmed card by card before the token is touched; the token then takes the new PIN, the new split is
recorded (activations check shares against the latest split on record, :func:`ceremony.procedures.activation.
pin_split`), the old PIN is shown refused and the new shares shown to open the token, and the old cards are
retired under witness with their bag numbers. A leaver's card, not handed back, opens nothing once the PIN
it rebuilt is gone (docs/security.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ceremony.errors import ConfigError, StateError
from ceremony.keys.custody import CustodyError, Share, new_secret, pin_from_secret, share_fingerprint, withdraw
from ceremony.keys.store import KeyStore
from ceremony.model.ceremony_file import PinChangeCeremony
from ceremony.model.events import Action
from ceremony.procedures.activation import PinSplit, pin_split, so_purpose
from ceremony.procedures.base import SEAL_KEY, Procedure
from ceremony.record.workspace import activation_purpose


class _PinProcedure(Procedure):
    """What a PIN change and an SO reset share: the holders of the current shares, the new splits, the proof."""

    #: Which PINs this ceremony replaces ("user", "so").
    changes: ClassVar[tuple[str, ...]] = ()
    #: The shares presented to open the token (or log the SO in) before the change: the current split's.
    presents: ClassVar[str] = "user"
    #: The splits this ceremony replaces (PIN -> the split on record before it), set when the shares are presented.
    replaced: dict[str, PinSplit]
    #: The user PIN before the change, held in memory until the token is shown to refuse it.
    old_user_pin: str | None = None
    old_so_pin: str | None = None

    def _pins(self) -> list[str]:
        return list(self.changes)

    def _purpose(self, pin: str) -> str:
        return activation_purpose(self.token.label) if pin == "user" else so_purpose(self.token.label)

    def check(self) -> None:
        super().check()
        src = self.ceremony.path
        if self.ws.config.key_store.kind != "pkcs11":
            raise ConfigError(
                f"{src}: token: this workspace keeps its keys in the software key store, which has no token PIN to "
                "change (its passphrase is set at init); PIN ceremonies are for PKCS#11 tokens"
            )
        if not self.ws.token_exists(self.token.label):
            if self.rehearsal:
                return  # the rehearsal initialises a throwaway token first
            raise StateError(f"{src}: token.label: token {self.token.label!r} is not initialised in {self.ws.root}")
        spec = self.spec
        seated = set(self.custodians)
        holders: set[str] = set()
        for pin in {*self._pins(), self.presents}:
            current = pin_split(self.ws, self.token.label, self._purpose(pin))
            holders |= set(current.shares)
            if pin == self.presents:
                present = [c for c in current.shares if c in seated]
                if len(present) < current.m:
                    raise ConfigError(
                        f"{src}: participants.custodians: {len(present)} of the {pin} PIN's current custodians "
                        f"({', '.join(sorted(current.shares))}; {current.m} needed, split by {current.ceremony_id}) "
                        "are seated"
                        + (
                            "; an SO reset (user-pin-reset) sets a user PIN no quorum can rebuild"
                            if pin == "user"
                            else ""
                        )  # fmt: skip
                    )
        for i, pid in enumerate(spec.leaving):
            if pid not in holders:
                raise ConfigError(f"{src}: leaving[{i}]: {pid} holds no share of the PINs this ceremony changes")
        unaccounted = sorted(holders - seated - set(spec.leaving))
        if unaccounted:
            raise ConfigError(
                f"{src}: participants.custodians: {', '.join(unaccounted)} hold(s) a current share; seat them (their "
                "old cards are retired here) or list them under leaving"
            )

    # --- steps the two ceremonies share ------------------------------------------------------------
    def _present(self, pin: str) -> tuple[str, dict[str, str], PinSplit]:
        """The current PIN ``pin`` from a quorum of its current holders among the seated custodians, each share
        checked against the fingerprint recorded for its holder (an old card is refused by name)."""
        purpose = self._purpose(pin)
        current = pin_split(self.ws, self.token.label, purpose)
        holders = [c for c in sorted(current.shares) if c in self.custodians]
        presented = self.console.present_shares(purpose, holders, current.m)
        for custodian, words in presented:
            if current.shares.get(custodian) != share_fingerprint(words):
                raise CustodyError(
                    f"{custodian}'s {pin} PIN share is not the one recorded for them when the PIN was last set "
                    f"({current.ceremony_id})",
                    custodian=custodian,
                )
        secret, presented, _ = self._rebuild(purpose, presented, current.shares)
        return pin_from_secret(secret), {c: share_fingerprint(w) for c, w in presented}, current

    def _rehearsal_token(self) -> None:
        """A rehearsal's throwaway token, initialised (and its PINs split) first, then logged out."""
        if not (self.rehearsal and not self.ws.token_exists(self.token.label)):
            return
        record = self._new_token(self.token.label)
        self._record(
            Action.REHEARSAL_TOKEN,
            f"throwaway token {self.token.label!r} initialised for the rehearsal",
            [self.spec.participants.administrator],
            details=record,
        )
        self._close_store()
        # Typed back already, the throwaway token's cards make way for the rehearsed split's (same names).
        for card in self.ws.share_cards_dir.glob(f"{self.spec.ceremony_id}.*.txt"):
            card.unlink()

    def _use(self, store: KeyStore) -> None:
        """The workspace's own token, once opened, is its key store; another token of the workspace (a restore
        test's, a re-wrap's scratch token) is only this ceremony's."""
        self.store = store
        if self.token.label == self.ws.token_label:
            self.ws.use_key_store(store)

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def do_split(self) -> dict[str, Any]:
        """New PINs, split among the seated custodians; every card typed back before the token is touched."""
        self.new: dict[str, tuple[bytes, list[Share], dict[str, Any]]] = {}
        records: dict[str, Any] = {}
        for pin in self._pins():
            purpose = self._purpose(pin)
            secret = new_secret(32)
            shares, cards = self._split(purpose, secret)
            record = {**self._split_record(purpose, shares), "acknowledged": self._distribute(shares, cards)}
            self.new[pin] = (secret, shares, record)
            records[purpose] = {k: v for k, v in record.items() if k != "acknowledged"}
        return self._record(
            Action.CUSTODY_SPLIT,
            "new " + " and ".join(f"{p} PIN" for p in self._pins()) + f" generated, never shown, split "
            f"{self.quorum.m}-of-{self.quorum.n} among {', '.join(self.custodians)}; every card confirmed",
            self.custodians,
            details={"splits": records, "reason": self.spec.reason},
        )

    def _set_record(self, pin: str) -> dict[str, Any]:
        """The new split, as the step that set the PIN records it (what activations check shares against);
        unattended trial runs rest the new user shares in ``secrets/`` instead of the old ones."""
        purpose = self._purpose(pin)
        _, shares, record = self.new[pin]
        out = dict(record)
        if not self.console.attended:
            withdraw(self.ws.shares_dir(purpose))
            out |= self._deposit(purpose, shares)
        return out

    def _verify(self, refused: dict[str, bool]) -> dict[str, Any]:
        """The token refuses the replaced PINs; a quorum of the new user shares opens it (the seal's login)."""
        from ceremony.keys.pkcs11 import pin_accepted

        self._close_store()
        module, conf = self.ws.config.key_store.module, self.ws.softhsm_conf
        assert module is not None
        if self.old_user_pin is not None:
            refused["user"] = not pin_accepted(module, self.token.label, conf, self.old_user_pin)
            self.old_user_pin = None
        kept = [pin for pin, ok in refused.items() if not ok]
        if kept:
            raise StateError(f"the token still accepts the old {' and '.join(kept)} PIN after the change")
        secret, presented, _ = self._present("user")
        store = self.ws.token_store(self.token.label, secret)
        self._use(store)
        self.store = store
        self.seal_with = (store, SEAL_KEY)
        return self._record(
            Action.PIN_VERIFY,
            (
                f"the token refuses the old {' and '.join(sorted(refused))} PIN; "
                if refused
                else "(the old user PIN was never presented: an SO reset does not know it) "
            )
            + "the new user PIN's shares open it",
            [c for c in presented],
            details={"old_pin_refused": refused, "new_shares_presented": presented},
        )

    def do_retire_cards(self) -> dict[str, Any]:
        """The replaced splits' cards: destroyed under witness when their holder is seated; a leaver's, not handed
        back, is recorded as such (it opens nothing now that its PIN is gone)."""
        witnesses = self.spec.participants.witnesses
        gate = self._gate("retire-cards", "the old share cards are destroyed in front of the witnesses", witnesses)
        retired: dict[str, Any] = {}
        for pin, old in self.replaced.items():
            retired[self._purpose(pin)] = {
                "split_by": old.ceremony_id,
                "cards": {
                    c: {
                        "fingerprint": fp,
                        "bag": old.bags.get(c),
                        "state": "not handed back: the holder left" if c in self.spec.leaving else "destroyed",
                    }
                    for c, fp in sorted(old.shares.items())
                },
            }
        return self._record(
            Action.CARDS_RETIRE,
            "the replaced share cards retired: "
            + "; ".join(f"{p}: {len(r['cards'])} card(s) of {r['split_by']}" for p, r in retired.items()),
            self.spec.participants.witnesses,
            details={"retired": retired, "leaving": list(self.spec.leaving), **gate},
        )


class PinChange(_PinProcedure):
    """The user PIN (and, if the file says so, the SO PIN) changed by the token's own users (C_SetPIN)."""

    TYPE = "pin-change"
    SCRIPT = (
        ("activate", "the current custodians present their user-PIN shares (and SO-PIN shares if it changes)"),
        ("split", "new PINs generated; each split among the custodians, who confirm their new cards"),
        ("change", "the token takes the new PINs (C_SetPIN); the new splits are recorded"),
        ("verify", "the token refuses the old PINs; the new shares open it"),
        ("retire-cards", "the old share cards are destroyed under witness; their bag numbers are recorded"),
    )

    def _pins(self) -> list[str]:
        spec: PinChangeCeremony = self.spec
        return list(spec.pins)

    def do_activate(self) -> dict[str, Any]:
        self._rehearsal_token()
        self.replaced = {}
        details: dict[str, Any] = {"token": self.token.label}
        if "so" in self._pins():
            self.old_so_pin, details["so_shares_presented"], self.replaced["so"] = self._present("so")
        self.old_user_pin, presented, current = self._present("user")
        if "user" in self._pins():
            self.replaced["user"] = current
        store = self.ws.token_store(self.token.label, self.old_user_pin)
        self._use(store)
        self.store = store
        return self._record(
            Action.TOKEN_ACTIVATE,
            f"token {self.token.label!r} activated by {len(presented)} custodians' current PIN shares",
            list(presented),
            details={**details, "shares_presented": presented},
        )

    def do_change(self) -> dict[str, Any]:
        from ceremony.keys.pkcs11 import Pkcs11KeyStore, so_operation

        details: dict[str, Any] = {}
        if "so" in self._pins():
            assert self.old_so_pin is not None
            self._close_store()  # the SO logs in alone (PKCS#11: one user type per application)
            module = self.ws.config.key_store.module
            assert module is not None
            new_so = pin_from_secret(self.new["so"][0])
            so_operation(module, self.token.label, self.ws.softhsm_conf, self.old_so_pin, new_so_pin=new_so)
            details[self._purpose("so")] = self._set_record("so")
            assert self.old_user_pin is not None
            self.store = self.ws.token_store(self.token.label, self.old_user_pin)
            self._use(self.store)
        if "user" in self._pins():
            store = self._key_store()
            assert isinstance(store, Pkcs11KeyStore)
            store.change_pin(pin_from_secret(self.new["user"][0]))
            details[self._purpose("user")] = self._set_record("user")
        return self._record(
            Action.PIN_CHANGE,
            "token " + repr(self.token.label) + " took the new " + " and ".join(f"{p} PIN" for p in self._pins()),
            self.operators,
            details=details,
        )

    def do_verify(self) -> dict[str, Any]:
        from ceremony.keys.pkcs11 import pin_accepted

        refused: dict[str, bool] = {}
        if "so" in self._pins():
            module = self.ws.config.key_store.module
            assert module is not None
            self._close_store()
            assert self.old_so_pin is not None
            refused["so"] = not pin_accepted(module, self.token.label, self.ws.softhsm_conf, self.old_so_pin, so=True)
            self.old_so_pin = None
        if "user" not in self._pins():
            self.old_user_pin = None
        return self._verify(refused)


class UserPinReset(_PinProcedure):
    """The SO sets a new user PIN (C_InitPIN) when no quorum of the user PIN's shares can be gathered."""

    TYPE = "user-pin-reset"
    changes = ("user",)
    presents = "so"
    SCRIPT = (
        ("activate-so", "custodians present their SO-PIN shares"),
        ("split", "a new user PIN generated, split among the custodians, who confirm their new cards"),
        ("reset", "the SO logs in and sets the new user PIN (C_InitPIN); the new split is recorded"),
        ("verify", "the new shares open the token"),
        ("retire-cards", "the old user-PIN cards are destroyed under witness; their bag numbers are recorded"),
    )

    def do_activate_so(self) -> dict[str, Any]:
        self._rehearsal_token()
        self.so_pin, presented, _ = self._present("so")
        self.replaced = {"user": pin_split(self.ws, self.token.label, self._purpose("user"))}
        return self._record(
            Action.TOKEN_ACTIVATE,
            f"the SO PIN of token {self.token.label!r} rebuilt from {len(presented)} custodians' shares",
            list(presented),
            details={"token": self.token.label, "so_shares_presented": presented, "reason": self.spec.reason},
        )

    def do_reset(self) -> dict[str, Any]:
        from ceremony.keys.pkcs11 import so_operation

        module = self.ws.config.key_store.module
        assert module is not None
        gate = self._gate("reset", f"the SO sets a new user PIN on token {self.token.label!r}", self.operators)
        so_operation(module, self.token.label, self.ws.softhsm_conf, self.so_pin,
                     new_user_pin=pin_from_secret(self.new["user"][0]))  # fmt: skip
        self.so_pin = ""
        return self._record(
            Action.PIN_RESET,
            f"the SO set a new user PIN on token {self.token.label!r} (C_InitPIN)",
            self.operators,
            details={self._purpose("user"): self._set_record("user"), **gate},
        )

    def do_verify(self) -> dict[str, Any]:
        return self._verify({})
