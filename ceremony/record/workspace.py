"""Where state lives: workspace.yaml, the inventory, the key store, artifacts, journal and secrets."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml
from pydantic import Field, field_validator

from ceremony.clock import PIN_VARIABLE, SYSTEM, Clock, pinned
from ceremony.errors import CeremonyError, ConfigError, InputError, StateError, TokenError
from ceremony.fs import (
    check_not_writable_by_others,
    check_private_dir,
    make_dirs,
    open_regular,
    write_private,
    write_text_once,
)
from ceremony.keys.store import KeyStore
from ceremony.model.config import Strict, load_model
from ceremony.model.events import Event, KeyUseRefused, WorkspaceInit
from ceremony.model.people import REHEARSAL_AREA
from ceremony.record.transcript import Journal

if TYPE_CHECKING:  # the inventory (and SQLAlchemy) load when first used: the activation session never needs them
    from ceremony.record.inventory import Inventory

WORKSPACE_FILE = "workspace.yaml"
PIN_ENV = "CEREMONY_TOKEN_PIN"
PASSPHRASE_ENV = "CEREMONY_SOFTWARE_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
#: SoftHSM numbers RFC 5649 AES key wrap with padding 0x210A; PKCS#11 3.x HSMs use 0x210B.
SOFTHSM_WRAP_MECHANISM = "0x210A"
#: A PIN or passphrase file is a line; anything longer is not one.
SECRET_FILE_LIMIT = 4096
#: The token label ``init`` gives a workspace, the one the shipped ceremony files (data/ceremonies/*.yaml) and
#: HSM register (data/registers/hsms.yaml) name.
DEFAULT_TOKEN_LABEL = "s1sp-ca-token"  # noqa: S105 - a label, not a password


def activation_purpose(token_label: str) -> str:
    """The share set that activates a token: its user PIN (or software store passphrase)."""
    return f"{token_label}.user-pin"


class KeyStoreConfig(Strict):
    kind: Literal["pkcs11", "software"]
    #: PKCS#11 module path (pkcs11 only).
    module: str | None = None
    token_label: str | None = None
    wrap_mechanism: str | None = None
    #: Project-local SoftHSM2 configuration, relative to the workspace (SoftHSM only).
    softhsm_conf: str | None = None


class TimestampingConfig(Strict):
    """An RFC 3161 time-stamping authority (optional): when named, transcript seals, journal checkpoints, the
    evidence pack's manifest and report.pdf's signature carry its timestamp tokens (ceremony.record.timestamps)."""

    #: Where requests go (http:// or https://; a redirect is never followed).
    url: str
    #: The TSA's certificate chain, PEM: its own certificate first, then its issuers up to the root the tokens are
    #: verified against; relative to the workspace (e.g. ``timestamping/tsa-chain.pem``).
    certificate: str
    #: How long one request may take before the TSA counts as out of reach (the operation then goes on unstamped,
    #: and the next online step stamps it).
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s#]*)?", value):
            raise ValueError("must be an http:// or https:// address of a time-stamping authority")
        return value

    @field_validator("certificate")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not value or value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a path inside the workspace, e.g. timestamping/tsa-chain.pem")
        return value


#: What a workspace is for, fixed at init and journalled: a live workspace runs the PKI; a demo, rehearsal or
#: test workspace is throwaway, and only such a workspace honours a pinned clock (``ceremony.clock``).
Purpose = Literal["live", "demo", "rehearsal", "test"]


class WorkspaceConfig(Strict):
    #: A workspace description is a few lines; a bigger file is not one (docs/security.md "Bounded input").
    max_file_bytes: ClassVar[int] = 64 << 10
    file_kind: ClassVar[str] = "workspace file"
    schema_version: Literal[1]
    created: str
    purpose: Purpose = "live"
    key_store: KeyStoreConfig
    database: str = "inventory.sqlite"
    profile_sets: list[str] = ["s1spki-secure"]
    #: Production OIDs (policy, hwType) override the profile files' documentation-arc values.
    oids: dict[str, str] = {}
    #: An RFC 3161 time-stamping authority (none: every time in the workspace is its own clock's).
    timestamping: TimestampingConfig | None = None


def _read_secret_file(path: Path, what: str, variable: str, root: Path | None = None) -> str:
    """A secret file's text: a regular file (never a link) only its owner may read."""
    if not os.path.lexists(path):
        raise TokenError(
            f"no {what}: activate the token (`ceremony activate`), set {variable}, or create {path} (mode 0600)"
        )
    try:
        with open_regular(path, what, root=root, limit=SECRET_FILE_LIMIT) as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read(SECRET_FILE_LIMIT + 1)
    except CeremonyError as exc:
        raise TokenError(f"{path}: the {what} must be a regular file, never a link (replace it)") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise TokenError(f"{path} must be readable by its owner only (chmod 600 {path})")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise TokenError(f"{path}: the {what} is not UTF-8 text") from None


def write_secret(path: Path, value: str, *, root: Path | None = None) -> None:
    """Write a secret file with mode 0600 (in 0700 directories), refusing to overwrite one."""
    write_private(path, value + "\n", root=root)


def check_workspace_files(root: Path) -> None:
    """Refuse a workspace another local user could turn against the tool (DESIGN.md principle 9): its
    directory writable by group or others, a symlink among its entries, ``workspace.yaml`` or the token's
    configuration writable by them, or a ``secrets/``, ``share-cards/`` or ``token/`` they may enter
    (and, in the first two, any symlink or any file they may read)."""
    check_not_writable_by_others(root, "workspace directory")
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise StateError(f"{root}: cannot list the workspace ({exc.strerror})") from exc
    for entry in entries:
        if entry.is_symlink():
            raise StateError(
                f"{root / entry.name} is a symbolic link; a workspace holds no links (none is followed): "
                "replace it with the real file or directory"
            )
    check_not_writable_by_others(root / WORKSPACE_FILE, WORKSPACE_FILE)
    for sub in ("secrets", "share-cards"):
        check_private_dir(root / sub, f"{sub}/ directory", error=TokenError)
    check_private_dir(root / "token", "token/ directory", error=TokenError, files=False)
    check_not_writable_by_others(root / "token" / "softhsm2.conf", "SoftHSM2 configuration")


@dataclass
class Workspace:
    """An opened workspace directory."""

    root: Path
    config: WorkspaceConfig
    #: The one clock everything done in this workspace is dated by.
    clock: Clock = SYSTEM

    @classmethod
    def open(cls, root: Path, *, clock: Clock | None = None, assessing: bool = False) -> Workspace:
        """Open the workspace at ``root``. Without ``clock``, a clock pinned in the environment is honoured
        by a demo, rehearsal or test workspace and refused by a live one; otherwise the system clock.

        A workspace whose workspace.yaml names another purpose than its journal recorded at init (a mark
        removed or forged) is refused, except to an assessment (``assessing``), which reports it (GOV-05) and
        treats the workspace as live when either says so."""
        root = root.resolve()
        cfg = root / WORKSPACE_FILE
        if not os.path.lexists(cfg):
            raise InputError(f"{root} is not a workspace (no {WORKSPACE_FILE}); run `ceremony init` or `ceremony demo`")
        check_workspace_files(root)
        config = load_model(WorkspaceConfig, cfg)
        if config.key_store.softhsm_conf:  # whoever can write it chooses the token directory signed with
            check_not_writable_by_others(root / config.key_store.softhsm_conf, "SoftHSM2 configuration")
        recorded = recorded_purpose(root)
        if recorded is not None and recorded != config.purpose:
            if not assessing:
                raise ConfigError(
                    f"{root / WORKSPACE_FILE}: purpose is {config.purpose!r}, but the journal recorded {recorded!r} "
                    "at init; a workspace's purpose never changes"
                )
            if "live" in (recorded, config.purpose):
                config = config.model_copy(update={"purpose": "live"})
            # A pinned clock is honoured only by a workspace whose mark is intact.
            return cls(root, config, clock or SYSTEM)
        return cls(root, config, clock or _environment_clock(config.purpose, root))

    @property
    def live(self) -> bool:
        """A live workspace: custodians activate its token, and no PIN or quorum of shares ever rests in it."""
        return self.config.purpose == "live"

    @property
    def mark(self) -> str | None:
        """What every output of a demo, rehearsal or test workspace says it is; None for a live one."""
        return None if self.live else f"{self.config.purpose.upper()} WORKSPACE (not a live PKI)"

    # --- paths ----------------------------------------------------------------------
    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def database(self) -> Path | str:
        """The inventory's location: a SQLite file in the workspace, or a ``postgresql://`` URL."""
        db = self.config.database
        return db if "://" in db else self.root / db

    @property
    def transcripts_dir(self) -> Path:
        return self.root / "transcripts"

    @property
    def reports_dir(self) -> Path:
        """This workspace's runs (``runs/``) and evidence packs (``evidence/``); ``--reports`` may name another."""
        return self.root / "reports"

    @property
    def share_cards_dir(self) -> Path:
        return self.root / "share-cards"

    @property
    def rehearsal_dir(self) -> Path:
        """The rehearsal area: a workspace of its own, with its own throwaway token."""
        return self.root / REHEARSAL_AREA

    def discard(self, path: Path) -> str:
        """Remove a file or folder of this workspace that a ceremony made and an abandonment clears (share cards,
        deposited shares, a software token); returns its path relative to the workspace. A symbolic link is
        refused, never followed.

        Raises:
            StateError: ``path`` is outside the workspace or a symbolic link.
        """
        import shutil

        relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(self.root))).as_posix()
        if relative == "." or relative.startswith("../") or path.is_symlink():
            raise StateError(f"{path}: not a file of workspace {self.root} (or a symbolic link): left as it is")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return relative

    def shares_dir(self, purpose: str) -> Path:
        """Where shares deposited for unattended runs rest (0700 directory, 0600 files)."""
        return self.secrets_dir / "shares" / purpose

    @property
    def softhsm_conf(self) -> Path | None:
        """This workspace's SoftHSM2 configuration (its token directory), handed to every store it opens:
        never read from the process environment, which another workspace opened in this process may have
        pointed elsewhere."""
        conf = self.config.key_store.softhsm_conf
        return self.root / conf if conf else None

    @property
    def token_label(self) -> str | None:
        return self.config.key_store.token_label

    # --- components -----------------------------------------------------------------
    @cached_property
    def inventory(self) -> Inventory:
        from ceremony.record.inventory import Inventory

        return Inventory(self.database)

    @cached_property
    def journal(self) -> Journal:
        return Journal(self.journal_path, self.clock)

    @cached_property
    def key_store(self) -> KeyStore:
        """The workspace's token for daily work: its activation session (``ceremony activate``: m custodians'
        shares, the PIN held by one process, never on disk) when one is running. A live workspace has no
        other way. A demo, rehearsal or test workspace may also open it from the environment, a PIN file, or
        the m custodian shares deposited for its unattended runs."""
        from ceremony.keys import agent

        ks = self.config.key_store
        if ks.kind == "pkcs11" and (not ks.module or not ks.token_label):
            raise ConfigError(
                f"{self.root / WORKSPACE_FILE}: key_store.module and key_store.token_label are required for pkcs11"
            )
        session = agent.socket_path(self.root)
        if ks.kind == "pkcs11" and agent.status(session) is not None:
            assert ks.token_label is not None
            return agent.AgentKeyStore(session, ks.token_label)
        if self.live:
            raise TokenError(
                f"token {ks.token_label!r} is not activated: its custodians activate it with "
                f"`ceremony --workspace {self.root} activate` (a live workspace keeps no PIN; {PIN_ENV} and PIN "
                "files are for demo, rehearsal and test workspaces)"
            )
        if ks.kind == "pkcs11":
            assert ks.token_label is not None
            from ceremony.keys.store import pin_source_named

            shares, pin_file = self.shares_dir(activation_purpose(ks.token_label)), self.secrets_dir / "token.pin"
            overridden = [f"the shares deposited in {shares.relative_to(self.root)}/"] if shares.is_dir() else []
            overridden += [f"the PIN file {pin_file.relative_to(self.root)}"] if pin_file.exists() else []
            with pin_source_named(PIN_ENV, overridden):
                return self.token_store(ks.token_label, self._secret(PIN_ENV, "token.pin", "token PIN"))
        passphrase = self._secret(PASSPHRASE_ENV, "software-store.passphrase", "software store passphrase")
        return self.token_store(ks.token_label, passphrase)

    def use_key_store(self, store: KeyStore) -> None:
        """Make ``store`` (a token a ceremony has just activated) the workspace's key store."""
        self.__dict__["key_store"] = store

    def token_store(self, token_label: str | None, secret: str) -> KeyStore:
        """Open a token of this workspace by label (the software store: a directory per label)."""
        from ceremony.keys.registry import open_key_store

        ks = self.config.key_store
        if ks.kind == "pkcs11":
            conf = self.softhsm_conf
            return open_key_store("pkcs11", module=ks.module, token_label=token_label, pin=secret, conf=conf)
        return open_key_store("software", directory=self.software_dir(token_label), passphrase=secret.encode())

    def software_dir(self, token_label: str | None) -> Path:
        same = token_label is None or token_label == self.config.key_store.token_label
        return self.secrets_dir / ("keys" if same else f"keys-{token_label}")

    def token_exists(self, token_label: str) -> bool:
        ks = self.config.key_store
        if ks.kind == "pkcs11":
            from ceremony.keys.pkcs11 import token_present

            assert ks.module is not None
            return token_present(ks.module, token_label, self.softhsm_conf)
        return self.software_dir(token_label).is_dir()

    def _secret(self, env: str, filename: str, what: str) -> str:
        value = os.environ.get(env)
        if value:
            return value
        if not (self.secrets_dir / filename).exists() and self.token_label:
            shares = self.shares_dir(activation_purpose(self.token_label))
            if shares.is_dir():
                from ceremony.keys.custody import activation_secret

                return activation_secret(shares)
        return _read_secret_file(self.secrets_dir / filename, what, env, self.root)

    # --- destroyed keys -------------------------------------------------------------
    @cached_property
    def destroyed_keys(self) -> dict[tuple[str | None, str], dict[str, Any]]:
        """(token label, key label) -> the journal entry that recorded its destruction."""
        return {
            (e.get("token_label"), str(e["key_label"])): e
            for e in self.journal.entries()
            if e.get("event") == Event.KEY_DESTROYED
        }

    def refuse_destroyed(self, key_label: str, token_label: str | None = None) -> None:
        """Refuse, and flag in the journal, any use of a key destroyed by a ceremony."""
        token = token_label or self.token_label
        entry = self.destroyed_keys.get((token, key_label))
        if entry is None:
            return
        self.journal.append(KeyUseRefused(key_label=key_label, token_label=token))
        raise StateError(
            f"key {key_label!r} on token {token!r} was destroyed in ceremony {entry.get('ceremony_id')} "
            f"({str(entry['time'])[:10]}); this use is refused and flagged in the journal"
        )

    def close(self) -> None:
        if "key_store" in self.__dict__:
            self.key_store.close()
        if "inventory" in self.__dict__:
            self.inventory.close()


def recorded_purpose(root: Path) -> str | None:
    """The purpose the journal's first entry (``workspace.init``) recorded: what the workspace is, whatever
    its workspace.yaml says now. None while the workspace is being initialised (no journal yet); "unknown"
    when the first entry is not an init entry (the journal was cut or forged: GOV-05 and LOG-01 report it)."""
    journal = root / "journal.jsonl"
    if not journal.exists():
        return None
    with open_regular(journal, "journal", root=root) as fh:
        first = fh.readline(65536)
    try:
        entry = json.loads(first)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or entry.get("event") != Event.WORKSPACE_INIT:
        return "unknown"
    return str(entry.get("purpose", "live"))


def _environment_clock(purpose: Purpose, root: Path) -> Clock:
    pinned_clock = pinned()
    if pinned_clock is None:
        return SYSTEM
    if purpose == "live":
        raise ConfigError(
            f"{PIN_VARIABLE} is set, but {root} is a live workspace: a live workspace keeps the system clock "
            f"(unset {PIN_VARIABLE})"
        )
    return pinned_clock


def init_workspace(
    root: Path,
    *,
    key_store: Literal["auto", "pkcs11", "software"] = "auto",
    token_label: str = DEFAULT_TOKEN_LABEL,
    initialise_token: bool | None = None,
    database: str | None = None,
    purpose: Purpose = "live",
    clock: Clock | None = None,
) -> Workspace:
    """Create a new workspace: directories, secrets (generated, 0600), token or store, database.

    ``auto`` uses SoftHSM2 when its module is installed and the software store otherwise.
    With ``initialise_token`` False the token (or store) is left to a token-initialisation
    ceremony, whose custodians then hold its PIN in shares. A live workspace is always so (its PINs are
    never written: ``initialise_token`` True is refused, None means False), and never uses the software
    store; a demo, rehearsal or test workspace initialises its token here by default (None means True),
    with its PINs in ``secrets/`` (0600) unless ``CEREMONY_TOKEN_PIN`` gives the user PIN. Refuses a
    directory that exists and is not empty. ``database`` is a ``postgresql://`` URL for an inventory shared by several
    operators (checked, and its schema brought up to date, before anything is created); by default
    the inventory is a SQLite file in the workspace.
    """
    from ceremony.keys.pkcs11 import find_softhsm_module, init_softhsm_token, write_softhsm_conf

    root = root.resolve()
    clock = clock or _environment_clock(purpose, root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(f"{root} exists and is not empty; a new workspace needs a new directory")
    if database is not None:
        if "://" not in database:
            raise InputError(f"--database: {database!r} is not a postgresql:// URL (SQLite is the default)")
        from ceremony.record.inventory import Inventory

        Inventory(database).close()
    module = find_softhsm_module()
    if key_store == "pkcs11" and module is None:
        raise TokenError("SoftHSM2 is not installed (apt-get install softhsm2); use the software store")
    kind: Literal["pkcs11", "software"] = "pkcs11" if key_store != "software" and module else "software"
    if purpose == "live":
        if kind == "software":
            raise InputError(
                "a live workspace keeps its CA keys on a PKCS#11 token (install softhsm2, or name the HSM's module); "
                "the software key store is for trying the tool: --purpose test"
            )
        if initialise_token:
            raise InputError(
                "a live workspace's token is initialised in an attended token-init ceremony, whose custodians hold "
                "its PINs in shares; init writes no PIN (leave the token: --no-token)"
            )
        initialise_token = False
    elif initialise_token is None:
        initialise_token = True
    if root.exists():
        check_not_writable_by_others(root, "workspace directory", error=InputError)
    make_dirs(root)  # every directory with an explicit mode, whatever the umask
    for sub in ("artifacts", "transcripts"):
        make_dirs(root / sub, root=root)
    for sub in ("secrets", "share-cards"):
        make_dirs(root / sub, root=root, private=True)
    when = clock.now().isoformat(timespec="seconds")
    if kind == "pkcs11":
        assert module is not None
        if initialise_token:
            pin = os.environ.get(PIN_ENV) or secrets.token_urlsafe(18)
            if not os.environ.get(PIN_ENV):
                write_secret(root / "secrets" / "token.pin", pin, root=root)
            so_pin = secrets.token_urlsafe(18)
            write_secret(root / "secrets" / "so.pin", so_pin, root=root)
            init_softhsm_token(root / "token", root / "token" / "softhsm2.conf", token_label, so_pin, pin)
        else:
            write_softhsm_conf(root / "token", root / "token" / "softhsm2.conf")
        store = KeyStoreConfig(
            kind="pkcs11",
            module=module,
            token_label=token_label,
            wrap_mechanism=SOFTHSM_WRAP_MECHANISM,
            softhsm_conf="token/softhsm2.conf",
        )
    else:
        if initialise_token and not os.environ.get(PASSPHRASE_ENV):
            write_secret(root / "secrets" / "software-store.passphrase", secrets.token_urlsafe(24), root=root)
        store = KeyStoreConfig(kind="software", token_label=token_label)
    config = WorkspaceConfig(schema_version=1, created=when, purpose=purpose, key_store=store)
    if database:
        config = config.model_copy(update={"database": database})
    text = "# S1SPKI workbench workspace. Secrets are never stored in this file.\n" + (
        "# A live workspace holds no PIN at all: its custodians activate the token (`ceremony activate`).\n"
        if purpose == "live"
        else f"# A {purpose} workspace (not a live PKI): PINs come from {PIN_ENV} / {PASSPHRASE_ENV}, files in\n"
        "# secrets/ (0600) or the shares its unattended runs deposit.\n"
    )
    text += yaml.safe_dump(config.model_dump(exclude_none=True), sort_keys=False)
    write_text_once(root / WORKSPACE_FILE, text, mode=0o644, what="workspace files", root=root)
    ws = Workspace.open(root, clock=clock)
    ws.inventory.count()  # creates the database and runs the migrations
    ws.journal.append(
        WorkspaceInit(key_store=kind, token_label=token_label, token_initialised=initialise_token, purpose=purpose),
    )
    return ws


def default_workspace() -> Path:
    return Path(os.environ.get("CEREMONY_WORKSPACE") or "workspace")
