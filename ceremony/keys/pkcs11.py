"""PKCS#11 key store (python-pkcs11): CA keys generated on the token, able only to sign, never extractable."""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import os
import platform
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, Self

import pkcs11
from asn1crypto.core import OctetString
from asn1crypto.keys import ECDomainParameters
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.utils import Buffer
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from ceremony.errors import InputError, TokenError
from ceremony.keys.store import WRAP_MECHANISM_NAMES, KeyAttributes
from ceremony.model.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm

_FIND_ATTEMPTS = 5
_SOFTHSM_CANDIDATES = (
    f"/usr/lib/{platform.machine()}-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
_EC_CURVES: dict[str, ec.EllipticCurve] = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}
_EC_ALGORITHMS: dict[str, str] = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}
_RSA_ALGORITHMS: dict[str, int] = {"rsa-3072": 3072}
_ALGORITHM_NAMES = ", ".join([*_EC_ALGORITHMS, *_RSA_ALGORITHMS])

# The private key may do one thing: sign. Every other capability is set explicitly false, because
# SoftHSM and python-pkcs11 both fill in defaults (see shared/notes/softhsm-key-backup.md).
_PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.SIGN: True,
    Attribute.SIGN_RECOVER: False,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
_PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.VERIFY_RECOVER: False,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
    Attribute.DERIVE: False,
}

# Operator-facing reasons for python-pkcs11 exceptions; anything else is named by its class.
_REASONS: dict[type[Exception], str] = {
    pkcs11.PinIncorrect: "PIN incorrect",
    pkcs11.PinLenRange: "PIN length out of range",
    pkcs11.PinLocked: "PIN locked",
    pkcs11.PinExpired: "PIN expired",
    pkcs11.PinInvalid: "PIN has invalid characters",
    pkcs11.UserPinNotInitialized: "user PIN not initialised",
    pkcs11.NoSuchToken: "no such token",
    pkcs11.NoSuchKey: "no such key",
    pkcs11.MultipleTokensReturned: "more than one token has that label",
    pkcs11.MultipleObjectsReturned: "more than one object has that label",
    pkcs11.UserNotLoggedIn: "not logged in",
    pkcs11.UserAlreadyLoggedIn: "already logged in",
    pkcs11.TokenNotPresent: "token not present",
    pkcs11.DeviceRemoved: "token removed",
    pkcs11.DeviceMemory: "token memory full",
    pkcs11.SessionHandleInvalid: "session no longer valid",
    pkcs11.MechanismInvalid: "mechanism not supported by the token",
    pkcs11.TemplateInconsistent: "key template refused",
    pkcs11.AttributeValueInvalid: "key template refused",
    pkcs11.AttributeTypeInvalid: "key template refused",
}
# C_InitToken return values worth naming.
# SoftHSM2 answers CKR_PIN_INCORRECT to an SO PIN of the wrong length.
_CKR_REASONS = {
    0xA0: "SO PIN refused (4-255 characters)",
    0xA2: "SO PIN length out of range",
    0xE0: "token not present",
}
# DER DigestInfo prefixes for PKCS#1 v1.5 over a digest computed outside the token (RFC 8017 9.2 note 1).
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_CURVE_NAMES = {"secp256r1": "secp256r1", "secp384r1": "secp384r1"}
_RSA_V15 = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
_RSA_PSS = {
    "sha256": (Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512, MGF.SHA512),
}


@dataclass
class _Loaded:
    pid: int
    conf: str | None


@dataclass
class _Login:
    session: Any
    pin: bytes
    users: weakref.WeakSet[Pkcs11KeyStore] = field(default_factory=weakref.WeakSet)
    #: Private key objects found by label in this session, for signing: a batch signs thousands of times with
    #: one key, and finding it again each time (C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal) cost more
    #: than the signature. Gone with the session (a fork, a re-initialisation, the last store's close); a label
    #: destroyed in this process is dropped; a handle the token no longer knows is looked up once more.
    signing_keys: dict[str, Any] = field(default_factory=dict)


# Per module path: the process and SOFTHSM2_CONF the library was initialised in/with. These mirror the C
# library's own process-wide state (one initialisation, one login per token), which is why they are module-level.
_loaded: dict[str, _Loaded] = {}
# One logged-in session per (module, SOFTHSM2_CONF, token label, pid). PKCS#11 login state belongs to
# the token and the application, not the session: a second C_Login fails, and any C_Logout logs out all.
_logins: dict[tuple[str, str | None, str, int], _Login] = {}


def find_softhsm_module() -> str | None:
    """Find the SoftHSM2 PKCS#11 module in the usual Debian/Ubuntu/Fedora locations.

    ``CEREMONY_SOFTHSM_MODULE`` overrides the search (an empty value means "not installed").

    Returns:
        The module path, or None when SoftHSM2 is not installed.
    """
    override = os.environ.get("CEREMONY_SOFTHSM_MODULE")
    if override is not None:
        return override if override and Path(override).is_file() else None
    return next((p for p in _SOFTHSM_CANDIDATES if Path(p).is_file()), None)


def _fail(exc: Exception, doing: str) -> NoReturn:
    # python-pkcs11 raises a bare PKCS11Error("Unmapped error code 0x..") for return values it has no class for.
    fallback = str(exc) if type(exc) is pkcs11.PKCS11Error and str(exc) else type(exc).__name__
    reason = next((text for cls, text in _REASONS.items() if isinstance(exc, cls)), fallback)
    raise TokenError(f"token refused to {doing}: {reason}") from exc


def _reinitialize(module: str, lib: Any) -> None:
    # Every session handle of the module dies with C_Finalize; forget them without closing.
    for key in [k for k in _logins if k[0] == module]:
        del _logins[key]
    try:
        lib.finalize()
    except pkcs11.PKCS11Error:
        pass  # a forked child's inherited state may already be reset (softhsm2.conf library.reset_on_fork)
    lib.initialize()


def _configure(conf: str) -> None:
    # The package's one write to the process environment (tests/test_environment.py holds it so).
    os.environ["SOFTHSM2_CONF"] = conf


def _lib(module: str, conf: Path | str | None) -> Any:
    """The module, initialised in this process under the SoftHSM2 configuration ``conf`` (its token directory).

    SoftHSM2 reads ``SOFTHSM2_CONF`` only in C_Initialize, so a process has one configuration: the first use
    sets it, before the library is initialised, and a use under another is refused. A second token
    configuration (a rehearsal area's token, another workspace's) is used from a process of its own, so a
    store open here is never re-pointed. A forked child is a new process and initialises afresh (PKCS#11 2.40
    base, "Applications and processes"). Without ``conf``, the ``SOFTHSM2_CONF`` in force is the one.
    """
    wanted = os.path.abspath(conf) if conf is not None else None
    pid, state = os.getpid(), _loaded.get(module)
    if state is not None and state.pid == pid:
        if wanted is not None and wanted != state.conf:
            raise TokenError(
                f"this process's token library is configured for {state.conf}; the token under {wanted} "
                "(another workspace, or a rehearsal area) is used from a process of its own"
            )
        return pkcs11.lib(module)
    if wanted is not None:
        _configure(wanted)
    try:
        lib = pkcs11.lib(module)
        if state is not None:  # inherited, initialised, from the parent
            _reinitialize(module, lib)
    except pkcs11.PKCS11Error as exc:
        if not Path(module).is_file():
            raise TokenError(f"PKCS#11 module {module} not found") from exc
        raise TokenError(f"cannot load PKCS#11 module {module} ({type(exc).__name__})") from exc
    _loaded[module] = _Loaded(pid, wanted or os.environ.get("SOFTHSM2_CONF"))
    return lib


def write_softhsm_conf(token_dir: Path, conf_path: Path) -> None:
    """A project-local softhsm2.conf whose token directory is ``token_dir`` (the environment is not touched:
    the store that opens the token hands it to the library)."""
    from ceremony.fs import make_dirs, write_text_once

    token_dir = token_dir.resolve()
    make_dirs(token_dir, private=True)  # 0700 and never through a link, whatever the umask
    if not os.path.lexists(conf_path):
        # 0644 whatever the umask: whoever can write it chooses the token directory the workbench signs with.
        write_text_once(
            conf_path,
            f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
            "slots.removable = false\n",
            mode=0o644,
            what="token configurations",
        )


def token_present(module: str, label: str, conf: Path | str | None = None) -> bool:
    """Whether an initialised token labelled ``label`` is in ``module`` (under ``conf``, SoftHSM2's
    configuration; without one, under the current SOFTHSM2_CONF)."""
    try:
        tokens = [s.get_token() for s in _lib(module, conf).get_slots(token_present=True)]
    except pkcs11.PKCS11Error as exc:
        _fail(exc, "list its slots")
    return any(t.label == label and t.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED for t in tokens)


def object_labels(module: str, token_label: str, conf: Path | str | None = None) -> set[str]:
    """The labels of the token's objects anyone may see (read-only, no login): every key pair this package
    generates or unwraps has a public key object under its label (CKA_PRIVATE false), so a label taken by a
    key pair is seen here before anyone logs in. Empty when no token has the label."""
    try:
        lib = _lib(module, conf)
        tokens = [s.get_token() for s in lib.get_slots(token_present=True)]
        token = next((t for t in tokens if t.label == token_label), None)
        if token is None:
            return set()
        with token.open(rw=False) as session:
            return {str(o.label) for o in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})}
    except pkcs11.PKCS11Error as exc:
        _fail(exc, f"list the public objects of token {token_label!r}")


def is_softhsm(module: str) -> bool:
    """Whether ``module`` is SoftHSM2's (whose tokens this package can delete; an HSM's are re-initialised by
    its security officer)."""
    return "softhsm" in Path(module).name.lower()


def delete_softhsm_token(module: str, label: str, conf: Path) -> bool:
    """Delete the SoftHSM2 token labelled ``label`` under ``conf`` (``softhsm2-util --delete-token``, which needs
    no PIN: it removes the token's files); returns whether it is gone. This process's library is initialised
    afresh, so it no longer sees the token (every session it had of this module ends)."""
    import shutil
    import subprocess

    if not is_softhsm(module):
        raise TokenError(f"{module} is not SoftHSM2: its tokens are re-initialised by the HSM's security officer")
    util = shutil.which("softhsm2-util")
    if util is None:
        raise TokenError("softhsm2-util is not installed (apt-get install softhsm2); it deletes a SoftHSM2 token")
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"} | {"SOFTHSM2_CONF": str(conf)}
    done = subprocess.run(  # noqa: S603 - a fixed program, the label as one argument
        [util, "--delete-token", "--token", label], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise TokenError(f"softhsm2-util could not delete token {label!r}: {why[-1] if why else done.returncode}")
    _reinitialize(module, _lib(module, conf))
    return not token_present(module, label, conf)


def init_softhsm_token(
    token_dir: Path, conf_path: Path, label: str, so_pin: str, user_pin: str, *, module: str | None = None
) -> None:
    """Write a project-local softhsm2.conf and initialise a SoftHSM2 token labelled ``label`` under it.

    SoftHSM2 finds its token directory only through ``SOFTHSM2_CONF``, read when the library is
    initialised: this process's token configuration becomes ``conf_path`` (refused if the process already
    uses another, see :func:`_lib`), and every later store of the token is opened with it. The PINs stay
    in memory: python-pkcs11 has no C_InitToken, so that one call goes through ctypes on the already
    initialised module; softhsm2-util would take them only as arguments or typed at a terminal.

    Args:
        token_dir: Directory for SoftHSM2's token files (created 0700).
        conf_path: Where to write the softhsm2.conf that points at ``token_dir``.
        label: Token label, at most 32 bytes of UTF-8.
        so_pin: Security officer PIN (4-255 characters).
        user_pin: User PIN (4-255 characters).
        module: The SoftHSM2 module; found with ``find_softhsm_module`` when omitted.

    Raises:
        InputError: The label is empty or longer than 32 bytes, or a PIN is not 4-255 characters.
        TokenError: SoftHSM2 is missing, a token with this label exists, or a PIN was refused.
    """
    label_bytes = label.encode("utf-8")
    if not 0 < len(label_bytes) <= 32:
        raise InputError(f"token label must be 1 to 32 bytes of UTF-8 (got {len(label_bytes)})")
    for name, pin in (("SO PIN", so_pin), ("user PIN", user_pin)):
        # Checked first: SoftHSM2 would refuse a short user PIN only after initialising the token.
        if not 4 <= len(pin.encode("utf-8")) <= 255:
            raise InputError(f"{name} must be 4-255 characters")
    module = module or find_softhsm_module()
    if module is None:
        raise TokenError("SoftHSM2 is not installed (apt-get install softhsm2)")
    write_softhsm_conf(token_dir, conf_path)
    lib = _lib(module, conf_path)
    try:
        tokens = [s.get_token() for s in lib.get_slots(token_present=True)]
    except pkcs11.PKCS11Error as exc:
        _fail(exc, "list its slots")
    if any(t.label == label and t.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED for t in tokens):
        raise TokenError(f"a token labelled {label!r} already exists in {token_dir}")
    free = [t for t in tokens if not t.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED]
    if not free:
        raise TokenError(f"no free SoftHSM2 slot in {token_dir}")
    c_lib = ctypes.CDLL(module)  # dlopen of the same path: the library python-pkcs11 initialised
    c_lib.C_InitToken.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    c_lib.C_InitToken.restype = ctypes.c_ulong
    so = so_pin.encode("utf-8")
    rv = c_lib.C_InitToken(free[0].slot.slot_id, so, len(so), label_bytes.ljust(32, b" "))
    if rv != 0:
        raise TokenError(f"SoftHSM2 refused to initialise the token: {_CKR_REASONS.get(rv, f'CKR 0x{rv:X}')}")
    # SoftHSM moves an initialised token to a new slot id, visible after re-initialisation.
    try:
        _reinitialize(module, lib)
        token = lib.get_token(token_label=label)
        with token.open(rw=True, so_pin=so_pin) as session:
            session.init_pin(user_pin)
    except pkcs11.PKCS11Error as exc:
        _fail(exc, "set the user PIN")


def _logged_in(module: str, conf: str | None, label: str) -> bool:
    """Whether this process holds a user login of the token (PKCS#11 logins are per application)."""
    return any(k[:3] == (module, conf, label) and k[3] == os.getpid() for k in _logins)


def so_operation(
    module: str,
    token_label: str,
    conf: Path | str | None,
    so_pin: str,
    *,
    new_user_pin: str | None = None,
    new_so_pin: str | None = None,
) -> None:
    """Log in as the token's security officer and reset the user PIN (C_InitPIN) or change the SO PIN (C_SetPIN).

    PKCS#11 allows one user type logged in per application: refused while this process holds a user login of
    the token (close its stores first). SoftHSM2 and libp11 users meet the difference: a user changes their own
    PIN with C_SetPIN; only the SO sets a new user PIN without knowing the old one (C_InitPIN).

    Raises:
        InputError: neither or both of ``new_user_pin`` and ``new_so_pin``, or a PIN of the wrong length.
        TokenError: a user login is open in this process, the SO PIN is refused, or the token refuses the PIN.
    """
    if (new_user_pin is None) == (new_so_pin is None):
        raise InputError("an SO operation resets the user PIN or changes the SO PIN: one of them")
    new = new_user_pin if new_user_pin is not None else new_so_pin
    assert new is not None
    if not 4 <= len(new.encode("utf-8")) <= 255:
        raise InputError("a PIN must be 4-255 characters")
    wanted = os.path.abspath(conf) if conf is not None else os.environ.get("SOFTHSM2_CONF")
    if _logged_in(module, wanted, token_label):
        raise TokenError(f"token {token_label!r} has a user logged in in this process; the SO logs in alone")
    lib = _lib(module, conf)
    doing = "reset the user PIN" if new_user_pin is not None else "change the SO PIN"
    try:
        token = lib.get_token(token_label=token_label)
        with token.open(rw=True, so_pin=so_pin) as session:
            if new_user_pin is not None:
                session.init_pin(new_user_pin)
            else:
                session.set_pin(so_pin, new)
    except pkcs11.NoSuchToken as exc:
        raise TokenError(f"no token labelled {token_label!r} in {module}") from exc
    except pkcs11.PKCS11Error as exc:
        _fail(exc, f"{doing} on token {token_label!r}")


def pin_accepted(module: str, token_label: str, conf: Path | str | None, pin: str, *, so: bool = False) -> bool:
    """Whether the token accepts ``pin`` as its user PIN (``so``: its SO PIN) now (a login tried and closed at once).

    Used to show that a replaced PIN no longer opens the token: refused while this process holds a user login
    of the token, since a second C_Login would only be told the user is already logged in.
    """
    wanted = os.path.abspath(conf) if conf is not None else os.environ.get("SOFTHSM2_CONF")
    if _logged_in(module, wanted, token_label):
        raise TokenError(f"token {token_label!r} has a user logged in in this process; close its stores first")
    lib = _lib(module, conf)
    try:
        token = lib.get_token(token_label=token_label)
        # Read-write: a failed login leaves its session open in python-pkcs11, and a read-only one would bar
        # the SO's later login (CKR_SESSION_READ_ONLY_EXISTS).
        with token.open(rw=True, **({"so_pin": pin} if so else {"user_pin": pin})):
            return True
    except pkcs11.PinIncorrect:
        return False
    except pkcs11.NoSuchToken as exc:
        raise TokenError(f"no token labelled {token_label!r} in {module}") from exc
    except pkcs11.PKCS11Error as exc:
        _fail(exc, f"try a PIN on token {token_label!r}")


class Pkcs11KeyStore:
    """CA keys on a PKCS#11 token found by its label, behind one logged-in session per process.

    Stores for the same token in one process share that session; a forked worker opens its own
    on first use. A process uses one SoftHSM2 configuration (token directory); another workspace's token
    is used from a process of its own.
    """

    kind: Literal["pkcs11", "software"] = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str, conf: Path | str | None = None) -> None:
        """Open the token labelled ``token_label`` in ``module`` and log in with ``pin``.

        ``conf`` is the SoftHSM2 configuration the token lives under (a workspace passes its own); without
        it, the ``SOFTHSM2_CONF`` in force now. A process uses one configuration: a store under another
        is refused (TokenError), so no store open here is ever re-pointed at another token directory.

        Raises:
            TokenError: The module cannot be loaded, no token has the label, or the PIN is refused.
        """
        self.module = module
        self.token_label = token_label
        self._pin = pin.encode("utf-8")
        self._conf = str(conf) if conf is not None else os.environ.get("SOFTHSM2_CONF")
        self._session()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(module={self.module!r}, token_label={self.token_label!r})"

    def __reduce__(self) -> NoReturn:
        # Pickling would write the PIN out; forked workers inherit the store instead.
        raise TypeError("a Pkcs11KeyStore holds a PIN and cannot be pickled")

    def _session(self) -> Any:
        return self._login().session

    def _login(self) -> _Login:
        lib = _lib(self.module, self._conf)
        key = (self.module, self._conf, self.token_label, os.getpid())
        login = _logins.get(key)
        if login is None:
            login = _logins[key] = _Login(self._open(lib), self._pin)
        elif not hmac.compare_digest(login.pin, self._pin):
            # The token is already logged in; a different PIN must not ride on that login.
            raise TokenError(f"token refused to open a session on token {self.token_label!r}: PIN incorrect")
        login.users.add(self)
        return login

    def _open(self, lib: Any) -> Any:
        """Find the token and log in. SoftHSM's file store can answer "no such token" or a general
        error while another process rewrites the token's files (seen with forked workers starting
        together, and after a sibling was killed): such answers are retried, briefly, after
        re-initialising the library; a refused PIN never is."""
        for attempt in range(_FIND_ATTEMPTS):
            last = attempt == _FIND_ATTEMPTS - 1
            try:
                token = lib.get_token(token_label=self.token_label)
                return token.open(rw=True, user_pin=self._pin.decode("utf-8"))
            except pkcs11.NoSuchToken as exc:
                if last:
                    raise TokenError(f"no token labelled {self.token_label!r} in {self.module}") from exc
            except (pkcs11.PinIncorrect, pkcs11.PinLocked, pkcs11.PinExpired) as exc:
                _fail(exc, f"open a session on token {self.token_label!r}")
            except pkcs11.PKCS11Error as exc:
                if last:
                    _fail(exc, f"open a session on token {self.token_label!r}")
            time.sleep(0.05 * (attempt + 1))
            _reinitialize(self.module, lib)
        raise AssertionError("unreachable")

    def _object(self, label: str, object_class: ObjectClass) -> Any:
        try:
            return self._session().get_key(object_class=object_class, label=label)
        except pkcs11.NoSuchKey as exc:
            what = object_class.name.lower().replace("_", " ")
            raise TokenError(f"no {what} labelled {label!r} on token {self.token_label!r}") from exc
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"find key {label!r}")

    def _import_kek(self, kek: bytes, *, wrap: bool) -> Any:
        """A session-only AES KEK with one capability (wrap or unwrap), every other one set false."""
        if len(kek) != 32:
            raise InputError("the backup key-encryption key must be 256 bits")
        try:
            return self._session().create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.VALUE: kek,
                    Attribute.TOKEN: False,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: wrap,
                    Attribute.UNWRAP: not wrap,
                    Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                    Attribute.LABEL: "backup-kek",
                }
            )
        except pkcs11.PKCS11Error as exc:
            _fail(exc, "import the backup key-encryption key")

    def wrap(self, label: str, kek: bytes, mechanism: int) -> bytes:
        """The private key ``label`` wrapped under ``kek``; only a key generated for backup can be."""
        kek_object = self._import_kek(kek, wrap=True)
        try:
            return bytes(
                kek_object.wrap_key(self._object(label, ObjectClass.PRIVATE_KEY), mechanism=Mechanism(mechanism))
            )
        except pkcs11.KeyUnextractable as exc:
            raise TokenError(
                f"key {label!r} is not EXTRACTABLE (generated without a backup allowance, or export forbidden after "
                "its restore test); it cannot be wrapped"
            ) from exc
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"wrap key {label!r}")
        finally:
            kek_object.destroy()

    def unwrap(
        self,
        label: str,
        wrapped: bytes,
        kek: bytes,
        mechanism: int,
        public_key: CAPublicKey,
        *,
        extractable: bool = False,
    ) -> CAPrivateKey:
        """Restore a wrapped EC key under ``label``: SENSITIVE, sign only, not EXTRACTABLE unless ``extractable``
        (a backup re-wrap's scratch copy, wrapped again under a new key, then destroyed)."""
        if label in self.labels():
            raise TokenError(f"token {self.token_label!r} already holds a key labelled {label!r}")
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise InputError("restoring a wrapped RSA key is not supported; CA keys here are EC")
        curve = _CURVE_NAMES.get(public_key.curve.name)
        if curve is None:
            raise InputError(f"unsupported curve {public_key.curve.name}")
        kek_object = self._import_kek(kek, wrap=False)
        key_id = hashlib.sha256(label.encode()).digest()[:16]
        try:
            # Whoever unwraps chooses the protection, so every attribute is set; SoftHSM refuses
            # ENCRYPT/VERIFY/WRAP on a private-key template (shared/notes/softhsm-key-backup.md).
            kek_object.unwrap_key(
                ObjectClass.PRIVATE_KEY,
                KeyType.EC,
                wrapped,
                id=key_id,
                label=label,
                store=True,
                mechanism=Mechanism(mechanism),
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: extractable,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                    Attribute.PRIVATE: True,
                    Attribute.ENCRYPT: pkcs11.DEFAULT,
                    Attribute.VERIFY: pkcs11.DEFAULT,
                    Attribute.WRAP: pkcs11.DEFAULT,
                },
            )
            # Unwrap creates only the private key: the public key object is imported beside it.
            point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            self._session().create_object(
                {
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.LABEL: label,
                    Attribute.ID: key_id,
                    Attribute.VERIFY: True,
                    Attribute.EC_PARAMS: encode_named_curve_parameters(curve),
                    Attribute.EC_POINT: OctetString(point).dump(),
                }
            )
        except pkcs11.PKCS11Error as exc:
            # SoftHSM answers a wrong KEK, a damaged blob and a wrong mechanism alike (CKR_GENERAL_ERROR).
            _fail(exc, f"unwrap key {label!r} (wrong key-encryption key, mechanism or damaged backup)")
        finally:
            kek_object.destroy()
        return self.load(label)

    def destroy(self, label: str) -> None:
        """Destroy the key pair's token objects (private and public key)."""
        self._login().signing_keys.pop(label, None)
        try:
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in list(self._session().get_objects({Attribute.CLASS: cls, Attribute.LABEL: label})):
                    obj.destroy()
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"destroy key {label!r}")

    def _sign(self, label: str, data: bytes, mechanism: Mechanism, param: Any = None) -> bytes:
        keys = self._login().signing_keys
        for attempt in (1, 2):
            key = keys.get(label)
            if key is None:
                key = keys[label] = self._object(label, ObjectClass.PRIVATE_KEY)
            try:
                return bytes(key.sign(data, mechanism=mechanism, mechanism_param=param))
            except (pkcs11.ObjectHandleInvalid, pkcs11.KeyHandleInvalid) as exc:
                keys.pop(label, None)  # destroyed behind this session's back: found afresh once, or refused
                if attempt == 2:
                    _fail(exc, f"sign with {label!r}")
            except pkcs11.PKCS11Error as exc:
                _fail(exc, f"sign with {label!r}")
        raise AssertionError("unreachable")

    def labels(self) -> list[str]:
        """Labels of the private keys on the token, sorted."""
        try:
            return sorted(str(o.label) for o in self._session().get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
        except pkcs11.PKCS11Error as exc:
            _fail(exc, "list keys")

    def generate(self, label: str, algorithm: KeyAlgorithm, *, extractable: bool = False) -> CAPrivateKey:
        """Generate a key pair on the token whose private key can only sign.

        Args:
            label: Label of both key objects; refused if any object on the token has it.
            algorithm: One of ec-p256, ec-p384, rsa-3072.
            extractable: Allow wrapped export for a declared backup (the key stays SENSITIVE).

        Returns:
            The private key as a cryptography key object that signs on the token.

        Raises:
            InputError: The algorithm is not supported.
            TokenError: The label is taken or the token refused.
        """
        if algorithm not in _EC_ALGORITHMS and algorithm not in _RSA_ALGORITHMS:
            raise InputError(f"key algorithm must be one of {_ALGORITHM_NAMES} (got {algorithm!r})")
        session = self._session()
        try:
            taken = any(True for _ in session.get_objects({Attribute.LABEL: label}))
        except pkcs11.PKCS11Error as exc:
            _fail(exc, "list keys")
        if taken:
            raise TokenError(f"token {self.token_label!r} already holds a key labelled {label!r}")
        common = {
            "store": True,
            "label": label,
            "id": hashlib.sha256(label.encode("utf-8")).digest()[:16],
            "private_template": {**_PRIVATE_TEMPLATE, Attribute.EXTRACTABLE: extractable},
        }
        try:
            if algorithm in _EC_ALGORITHMS:
                named_curve = encode_named_curve_parameters(_EC_ALGORITHMS[algorithm])
                params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: named_curve}, local=True)
                params.generate_keypair(public_template=_PUBLIC_TEMPLATE, **common)
            else:
                session.generate_keypair(
                    KeyType.RSA,
                    _RSA_ALGORITHMS[algorithm],
                    public_template={**_PUBLIC_TEMPLATE, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                    **common,
                )
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"generate key {label!r}")
        return self.load(label)

    def load(self, label: str) -> CAPrivateKey:
        """The private key labelled ``label`` as a cryptography key object that signs on the token.

        Raises:
            TokenError: No such key pair, or a key type other than EC and RSA.
        """
        private = self._object(label, ObjectClass.PRIVATE_KEY)
        public = self._object(label, ObjectClass.PUBLIC_KEY)
        try:
            if private.key_type == KeyType.EC:
                return TokenECPrivateKey(self, label, _ec_public_key(public))
            if private.key_type == KeyType.RSA:
                exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
                modulus = int.from_bytes(public[Attribute.MODULUS], "big")
                return TokenRSAPrivateKey(self, label, rsa.RSAPublicNumbers(exponent, modulus).public_key())
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"read the public key {label!r}")
        raise TokenError(f"key {label!r} has an unsupported type {private.key_type!r}")

    def attributes(self, label: str) -> KeyAttributes:
        """Protection attributes of the private key ``label``, read back from the token."""
        return self._attributes(label, ObjectClass.PRIVATE_KEY)

    def _attributes(self, label: str, object_class: ObjectClass) -> KeyAttributes:
        key = self._object(label, object_class)
        try:
            return KeyAttributes(
                label=label,
                sensitive=bool(key[Attribute.SENSITIVE]),
                extractable=bool(key[Attribute.EXTRACTABLE]),
                local=bool(key[Attribute.LOCAL]),
                always_sensitive=bool(key[Attribute.ALWAYS_SENSITIVE]),
                never_extractable=bool(key[Attribute.NEVER_EXTRACTABLE]),
                wrap_with_trusted=bool(key[Attribute.WRAP_WITH_TRUSTED]),
                modifiable=bool(key[Attribute.MODIFIABLE]),
                key_id=bytes(key[Attribute.ID]).hex(),
            )
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"read the attributes of {label!r}")

    def forbid_export(self, label: str) -> KeyAttributes:
        """Clear EXTRACTABLE on the private key ``label``, for good (True -> False is the one change PKCS#11
        allows; SoftHSM2 makes it while the key is MODIFIABLE), and read its attributes back.

        Raises:
            TokenError: No such key, or the token refused (a key that is not MODIFIABLE).
        """
        key = self._object(label, ObjectClass.PRIVATE_KEY)
        try:
            if key[Attribute.EXTRACTABLE]:
                key[Attribute.EXTRACTABLE] = False
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"clear EXTRACTABLE on {label!r}")
        attributes = self.attributes(label)
        if attributes.extractable:
            raise TokenError(f"token {self.token_label!r} still reports {label!r} EXTRACTABLE after clearing it")
        return attributes

    def wrap_mechanisms(self) -> frozenset[int]:
        """The AES key-wrap mechanisms the token's slot lists (C_GetMechanismList) with the wrap flag."""
        wanted = {m for m in Mechanism if m.value in WRAP_MECHANISM_NAMES}
        try:
            slot = self._session().token.slot
            offered = set()
            for mechanism in slot.get_mechanisms():
                if mechanism in wanted and slot.get_mechanism_info(mechanism).flags & pkcs11.MechanismFlag.WRAP:
                    offered.add(int(mechanism))
        except pkcs11.PKCS11Error as exc:
            _fail(exc, "list its mechanisms")
        return frozenset(offered)

    # --- symmetric keys (symmetric.py decides what they are; the token keeps them) ------------
    def _secret_template(self, label: str, *, purpose: str, extractable: bool) -> dict[Attribute, Any]:
        kek = purpose == "kek"
        return {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: extractable,
            Attribute.LABEL: label,
            Attribute.ID: hashlib.sha256(label.encode()).digest()[:16],
            # ENCRYPT lets the token compute the key check value (AES-ECB of a zero block).
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: not kek,
            Attribute.WRAP: kek,
            Attribute.UNWRAP: kek,
            Attribute.SIGN: False,
            Attribute.VERIFY: False,
            Attribute.DERIVE: False,
        }

    def _refuse_taken(self, label: str) -> None:
        try:
            taken = any(True for _ in self._session().get_objects({Attribute.LABEL: label}))
        except pkcs11.PKCS11Error as exc:
            _fail(exc, "list keys")
        if taken:
            raise TokenError(f"token {self.token_label!r} already holds a key labelled {label!r}")

    def import_secret(self, label: str, value: bytes | bytearray, *, purpose: str, extractable: bool = False) -> str:
        """Import an AES key (combined from components); returns the KCV the token computes for it."""
        self._refuse_taken(label)
        template = self._secret_template(label, purpose=purpose, extractable=extractable)
        try:
            self._session().create_object({**template, Attribute.VALUE: bytes(value)})
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"import key {label!r}")
        return self.secret_kcv(label)

    def generate_secret(self, label: str, length: int, *, purpose: str, extractable: bool = False) -> str:
        """Generate an AES key on the token (it never exists outside); returns its KCV."""
        self._refuse_taken(label)
        template = self._secret_template(label, purpose=purpose, extractable=extractable)
        for attribute in (Attribute.CLASS, Attribute.KEY_TYPE, Attribute.LABEL, Attribute.ID):
            del template[attribute]
        try:
            self._session().generate_key(
                KeyType.AES, length * 8, label=label, id=hashlib.sha256(label.encode()).digest()[:16], store=True,
                template=template,
            )  # fmt: skip
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"generate key {label!r}")
        return self.secret_kcv(label)

    def secret_kcv(self, label: str) -> str:
        """The first 3 octets of AES-ECB(K, 0^16), computed on the token."""
        key = self._object(label, ObjectClass.SECRET_KEY)
        try:
            return bytes(key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB))[:3].hex().upper()
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"compute the KCV of {label!r}")

    def secret_attributes(self, label: str) -> KeyAttributes:
        """Protection attributes of the AES key ``label``, read back from the token."""
        return self._attributes(label, ObjectClass.SECRET_KEY)

    def wrap_secret(self, kek_label: str, label: str, mechanism: int) -> bytes:
        """The AES key ``label`` wrapped under the token KEK ``kek_label`` (RFC 5649 with ``mechanism``)."""
        kek = self._object(kek_label, ObjectClass.SECRET_KEY)
        try:
            return bytes(kek.wrap_key(self._object(label, ObjectClass.SECRET_KEY), mechanism=Mechanism(mechanism)))
        except pkcs11.KeyUnextractable as exc:
            raise TokenError(f"key {label!r} was not declared for wrapped export") from exc
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"wrap key {label!r} under {kek_label!r}")

    def unwrap_secret(
        self, kek_label: str, label: str, wrapped: bytes, mechanism: int, *, purpose: str, extractable: bool = False
    ) -> str:
        """Unwrap an AES key under the token KEK into a new token key; returns the token's KCV for it."""
        self._refuse_taken(label)
        kek = self._object(kek_label, ObjectClass.SECRET_KEY)
        template = self._secret_template(label, purpose=purpose, extractable=extractable)
        for attribute in (Attribute.CLASS, Attribute.KEY_TYPE, Attribute.LABEL, Attribute.ID):
            del template[attribute]
        try:
            kek.unwrap_key(
                ObjectClass.SECRET_KEY, KeyType.AES, wrapped, label=label,
                id=hashlib.sha256(label.encode()).digest()[:16], store=True, mechanism=Mechanism(mechanism),
                template=template,
            )  # fmt: skip
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"unwrap key {label!r} (wrong KEK, mechanism or damaged data)")
        return self.secret_kcv(label)

    def destroy_secret(self, label: str) -> None:
        """Destroy the AES key ``label``."""
        try:
            for obj in list(
                self._session().get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})
            ):
                obj.destroy()
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"destroy key {label!r}")

    def change_pin(self, new_pin: str) -> None:
        """The user changes their own PIN (C_SetPIN on the logged-in session); this store keeps working with it.

        Raises:
            InputError: the new PIN is not 4-255 characters.
            TokenError: the token refuses the change.
        """
        if not 4 <= len(new_pin.encode("utf-8")) <= 255:
            raise InputError("a PIN must be 4-255 characters")
        session = self._session()
        try:
            session.set_pin(self._pin.decode("utf-8"), new_pin)
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"change the user PIN of token {self.token_label!r}")
        for login in _logins.values():
            if login.session is session:
                login.pin = new_pin.encode("utf-8")
        self._pin = new_pin.encode("utf-8")

    def close(self) -> None:
        """Leave the process's session; the last store to leave logs out and closes it."""
        pid = os.getpid()
        for key, login in list(_logins.items()):
            if key[3] == pid and self in login.users:
                login.users.discard(self)
                if not login.users:
                    del _logins[key]
                    try:
                        login.session.close()
                    except pkcs11.PKCS11Error:
                        pass  # the token may be gone; nothing is left to release


def _ec_public_key(public: Any) -> ec.EllipticCurvePublicKey:
    # CKA_EC_POINT is the X9.62 point wrapped in a DER OCTET STRING
    # (PKCS#11 2.40 current mechanisms, "Elliptic curve public key objects").
    point = bytes(OctetString.load(public[Attribute.EC_POINT]).native)
    curve_name = ECDomainParameters.load(public[Attribute.EC_PARAMS]).chosen.native
    curve = _EC_CURVES.get(curve_name)
    if curve is None:
        raise TokenError(f"unsupported curve {curve_name!r} on the token")
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def _refuse(*_: object, **__: object) -> NoReturn:
    raise TokenError("private key stays on the token")


def _digest(data: Buffer, algorithm: hashes.HashAlgorithm | utils.Prehashed) -> tuple[hashes.HashAlgorithm, bytes]:
    if isinstance(algorithm, utils.Prehashed):
        if len(data) != algorithm.digest_size:
            raise ValueError("the prehashed digest does not match the hash algorithm's digest size")
        return algorithm._algorithm, bytes(data)
    h = hashes.Hash(algorithm)
    h.update(data)
    return algorithm, h.finalize()


class _OnToken:
    """What both token key classes share: a label on a store, and no way to the key material."""

    def __init__(self, store: Pkcs11KeyStore, label: str, public: Any) -> None:
        self._store, self._label, self._public = store, label, public

    private_numbers = _refuse

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Refused: the private key stays on the token."""
        _refuse()

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label!r} on {self._store.token_label!r}>"


class TokenECPrivateKey(_OnToken, ec.EllipticCurvePrivateKey):
    """An EC private key on the token, usable wherever cryptography expects one.

    SoftHSM offers raw CKM_ECDSA only: the hash is computed here and the token's r||s signature
    is re-encoded as the DER Ecdsa-Sig-Value that X.509 needs (RFC 5758 section 3.2).
    """

    _public: ec.EllipticCurvePublicKey

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """ECDSA signature (DER) over ``data``, or over a digest with ``ec.ECDSA(Prehashed(...))``."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TokenError("the token signs with ECDSA only")
        if signature_algorithm.deterministic_signing:
            raise TokenError("the token cannot sign deterministically (RFC 6979)")
        _, digest = _digest(data, signature_algorithm.algorithm)
        raw = self._store._sign(self._label, digest, Mechanism.ECDSA)
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key, read from the token's public key object."""
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve."""
        return self._public.curve

    @property
    def key_size(self) -> int:
        """Bit length of the curve order."""
        return self._public.key_size

    exchange = _refuse


class TokenRSAPrivateKey(_OnToken, rsa.RSAPrivateKey):
    """An RSA private key on the token: PKCS#1 v1.5 or PSS with SHA-256/384/512, prehashed or not."""

    _public: rsa.RSAPublicKey

    def sign(
        self,
        data: Buffer,
        padding: asym_padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        """RSA signature over ``data`` (or over a digest with ``Prehashed``)."""
        if not isinstance(algorithm, utils.Prehashed | hashes.HashAlgorithm):
            raise TokenError("the token signs RSA over a SHA-2 hash only")
        hash_ = algorithm._algorithm if isinstance(algorithm, utils.Prehashed) else algorithm
        if hash_.name not in _DIGEST_INFO:
            raise TokenError(f"the token signs RSA with SHA-256, SHA-384 or SHA-512 (got {hash_.name})")
        if isinstance(padding, asym_padding.PKCS1v15):
            if isinstance(algorithm, utils.Prehashed):
                _, digest = _digest(data, algorithm)
                return self._store._sign(self._label, _DIGEST_INFO[hash_.name] + digest, Mechanism.RSA_PKCS)
            return self._store._sign(self._label, bytes(data), _RSA_V15[hash_.name])
        if isinstance(padding, asym_padding.PSS):
            mgf = padding.mgf
            if not isinstance(mgf, asym_padding.MGF1) or mgf._algorithm.name != hash_.name:
                raise TokenError("the token signs RSA-PSS with MGF1 over the message hash only")
            salt = padding._salt_length
            if isinstance(salt, asym_padding._DigestLength):
                salt = hash_.digest_size
            elif isinstance(salt, asym_padding._MaxLength):
                salt = asym_padding.calculate_max_pss_salt_length(self._public, hash_)
            elif not isinstance(salt, int):
                raise TokenError("RSA-PSS salt length AUTO is for verification only")
            _, digest = _digest(data, algorithm)
            hash_mechanism, mgf_id = _RSA_PSS[hash_.name]
            return self._store._sign(self._label, digest, Mechanism.RSA_PKCS_PSS, (hash_mechanism, mgf_id, salt))
        raise TokenError(f"the token signs RSA with PKCS#1 v1.5 or PSS only (got {padding.name})")

    def public_key(self) -> rsa.RSAPublicKey:
        """The public key, read from the token's public key object."""
        return self._public

    @property
    def key_size(self) -> int:
        """Bit length of the modulus."""
        return self._public.key_size

    decrypt = _refuse
