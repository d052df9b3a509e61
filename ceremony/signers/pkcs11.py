"""PKCS#11 key store (python-pkcs11): CA keys generated on the token, never extractable.

SoftHSM2 reads its token directory from ``SOFTHSM2_CONF`` when the library is initialised;
a workspace keeps its own softhsm2.conf, and the library is re-initialised when a process
switches workspace. python-pkcs11 has no C_InitToken, so token initialisation calls that
one function through ctypes, passing the SO PIN in memory (never on a command line).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
from pathlib import Path
from typing import Any, NoReturn, Self

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from ceremony.errors import TokenError
from ceremony.signers import CAPrivateKey, KeyAlgorithm, KeyAttributes

_SOFTHSM_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    f"/usr/lib/{platform.machine()}-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
_CURVES: dict[str, tuple[str, ec.EllipticCurve]] = {
    "ec-p256": ("secp256r1", ec.SECP256R1()),
    "ec-p384": ("secp384r1", ec.SECP384R1()),
}
#: The private key may do one thing: sign. Every other capability is set explicitly false
#: (SoftHSM defaults some to true; see shared/notes/softhsm-key-backup.md).
_PRIVATE_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
    Attribute.SIGN_RECOVER: False,
}
_PUBLIC_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
    Attribute.DERIVE: False,
    Attribute.VERIFY_RECOVER: False,
}

# The SOFTHSM2_CONF the loaded library was initialised with, per module path.
_initialised_conf: dict[str, str | None] = {}


def find_softhsm_module() -> str | None:
    """Path of the SoftHSM2 PKCS#11 module, or None when SoftHSM2 is not installed.

    ``CEREMONY_SOFTHSM_MODULE`` overrides the search (an empty value means "not installed").
    """
    override = os.environ.get("CEREMONY_SOFTHSM_MODULE")
    if override is not None:
        return override if override and Path(override).is_file() else None
    return next((p for p in _SOFTHSM_CANDIDATES if Path(p).is_file()), None)


def _lib(module: str) -> Any:
    """The library, initialised with the current SOFTHSM2_CONF (re-initialised if it changed)."""
    conf = os.environ.get("SOFTHSM2_CONF")
    try:
        lib = pkcs11.lib(module)
        if _initialised_conf.get(module, conf) != conf:
            lib.reinitialize()
    except pkcs11.PKCS11Error as exc:
        raise TokenError(f"cannot load PKCS#11 module {module} ({type(exc).__name__})") from exc
    _initialised_conf[module] = conf
    return lib


def _fail(exc: Exception, doing: str) -> NoReturn:
    reasons = {
        pkcs11.PinIncorrect: "PIN incorrect",
        pkcs11.PinLenRange: "PIN length out of range",
        pkcs11.PinLocked: "PIN locked",
        pkcs11.NoSuchToken: "no such token",
        pkcs11.NoSuchKey: "no such key",
        pkcs11.UserNotLoggedIn: "not logged in",
    }
    reason = next((text for cls, text in reasons.items() if isinstance(exc, cls)), type(exc).__name__)
    raise TokenError(f"token refused to {doing}: {reason}") from exc


def init_softhsm_token(
    token_dir: Path, conf_path: Path, label: str, so_pin: str, user_pin: str, *, module: str | None = None
) -> None:
    """Write a project-local softhsm2.conf and initialise a token with ``label`` in ``token_dir``.

    Sets ``SOFTHSM2_CONF`` in this process. PINs are passed in memory only.
    """
    module = module or find_softhsm_module()
    if module is None:
        raise TokenError("SoftHSM2 is not installed (apt-get install softhsm2)")
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf_path.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf_path)
    lib = _lib(module)
    free = [
        s for s in lib.get_slots(token_present=True) if not s.get_token().flags & pkcs11.TokenFlag.TOKEN_INITIALIZED
    ]
    if not free:
        raise TokenError(f"no free SoftHSM2 slot in {token_dir}")
    c_lib = ctypes.CDLL(module)  # the same loaded library: python-pkcs11 has initialised it
    c_lib.C_InitToken.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    c_lib.C_InitToken.restype = ctypes.c_ulong
    so = so_pin.encode()
    rv = c_lib.C_InitToken(free[0].slot_id, so, len(so), label.encode().ljust(32, b" ")[:32])
    if rv != 0:
        raise TokenError(f"C_InitToken failed (CKR 0x{rv:X})")
    lib.reinitialize()  # SoftHSM re-reads its slots; the new token gets a new slot id
    try:
        token = lib.get_token(token_label=label)
        with token.open(rw=True, so_pin=so_pin) as session:
            session.init_pin(user_pin)
    except pkcs11.PKCS11Error as exc:
        _fail(exc, "initialise the user PIN")


class Pkcs11KeyStore:
    """Keys on a PKCS#11 token found by label; one logged-in session per process."""

    kind = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self._conf = os.environ.get("SOFTHSM2_CONF")
        self._session: Any = None
        self._pid = -1

    def __repr__(self) -> str:  # never shows the PIN
        return f"Pkcs11KeyStore(module={self.module!r}, token_label={self.token_label!r})"

    def session(self) -> Any:
        """The process's logged-in session (a forked worker opens its own)."""
        if self._conf is not None:
            os.environ["SOFTHSM2_CONF"] = self._conf
        stale = _initialised_conf.get(self.module) != self._conf
        if self._session is None or self._pid != os.getpid() or stale:
            if self._pid != os.getpid():
                pkcs11.unload(self.module)  # a forked child must not reuse its parent's library state
                _initialised_conf.pop(self.module, None)
            lib = _lib(self.module)
            try:
                token = lib.get_token(token_label=self.token_label)
            except pkcs11.NoSuchToken as exc:
                raise TokenError(f"no token labelled {self.token_label!r} in module {self.module}") from exc
            except pkcs11.PKCS11Error as exc:
                _fail(exc, "list tokens")
            try:
                self._session = token.open(rw=True, user_pin=self._pin)
            except pkcs11.PKCS11Error as exc:
                _fail(exc, f"open a session on token {self.token_label!r}")
            self._pid = os.getpid()
        return self._session

    def _private(self, label: str) -> Any:
        try:
            return self.session().get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        except pkcs11.NoSuchKey as exc:
            raise TokenError(f"no private key labelled {label!r} on token {self.token_label!r}") from exc
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"find key {label!r}")

    def labels(self) -> list[str]:
        objects = self.session().get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        return sorted(str(o.label) for o in objects)

    def generate(self, label: str, algorithm: KeyAlgorithm, *, extractable: bool = False) -> CAPrivateKey:
        """Generate a key pair on the token: SENSITIVE; EXTRACTABLE only for a declared wrapped backup."""
        if label in self.labels():
            raise TokenError(f"token {self.token_label!r} already holds a key labelled {label!r}")
        private_template = {**_PRIVATE_TEMPLATE, Attribute.EXTRACTABLE: extractable}
        session = self.session()
        key_id = hashlib.sha256(label.encode()).digest()[:16]
        try:
            if algorithm in _CURVES:
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm][0])}, local=True
                )
                params.generate_keypair(
                    store=True,
                    label=label,
                    id=key_id,
                    public_template=_PUBLIC_TEMPLATE,
                    private_template=private_template,
                )
            elif algorithm == "rsa-3072":
                session.generate_keypair(
                    KeyType.RSA,
                    3072,
                    store=True,
                    label=label,
                    id=key_id,
                    public_template={**_PUBLIC_TEMPLATE, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                    private_template=private_template,
                )
            else:
                raise TokenError(f"key algorithm must be one of ec-p256, ec-p384, rsa-3072 (got {algorithm!r})")
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"generate key {label!r}")
        return self.load(label)

    def load(self, label: str) -> CAPrivateKey:
        private = self._private(label)
        try:
            public = self.session().get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"find the public key {label!r}")
        if private.key_type == KeyType.EC:
            return TokenECPrivateKey(self, label, _ec_public_key(public))
        if private.key_type == KeyType.RSA:
            numbers = rsa.RSAPublicNumbers(
                int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                int.from_bytes(public[Attribute.MODULUS], "big"),
            )
            return TokenRSAPrivateKey(self, label, numbers.public_key())
        raise TokenError(f"key {label!r} has an unsupported type {private.key_type!r}")

    def attributes(self, label: str) -> KeyAttributes:
        key = self._private(label)
        try:
            return KeyAttributes(
                label=label,
                sensitive=bool(key[Attribute.SENSITIVE]),
                extractable=bool(key[Attribute.EXTRACTABLE]),
                local=bool(key[Attribute.LOCAL]),
                always_sensitive=bool(key[Attribute.ALWAYS_SENSITIVE]),
                never_extractable=bool(key[Attribute.NEVER_EXTRACTABLE]),
            )
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"read the attributes of {label!r}")

    def sign_raw(self, label: str, data: bytes, mechanism: Mechanism) -> bytes:
        try:
            return bytes(self._private(label).sign(data, mechanism=mechanism))
        except pkcs11.PKCS11Error as exc:
            _fail(exc, f"sign with {label!r}")

    def close(self) -> None:
        if self._session is not None and self._pid == os.getpid():
            try:
                self._session.close()
            except pkcs11.PKCS11Error:
                pass  # the library may already have been re-initialised for another workspace
        self._session = None


def _ec_public_key(public: Any) -> ec.EllipticCurvePublicKey:
    # CKA_EC_POINT is a DER OCTET STRING wrapping the X9.62 point (PKCS#11 2.40 section 2.3.3).
    from asn1crypto.core import OctetString
    from asn1crypto.keys import ECDomainParameters

    point = bytes(OctetString.load(public[Attribute.EC_POINT]).native)
    curve_name = ECDomainParameters.load(public[Attribute.EC_PARAMS]).chosen.native
    curve = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}.get(curve_name)
    if curve is None:
        raise TokenError(f"unsupported curve {curve_name!r} on the token")
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def _refuse(*_: object, **__: object) -> NoReturn:
    raise TokenError("the private key stays on the token")


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
        _refuse()

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label!r} on {self._store.token_label!r}>"


class TokenECPrivateKey(_OnToken, ec.EllipticCurvePrivateKey):
    """An EC private key on the token, usable wherever cryptography expects one.

    SoftHSM offers raw CKM_ECDSA only: the hash is computed here and the token's r||s
    signature is re-encoded as the DER Ecdsa-Sig-Value X.509 needs (RFC 5758 3.2).
    """

    _public: ec.EllipticCurvePublicKey

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:  # type: ignore[override]
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TokenError("only ECDSA signatures are supported")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = bytes(data)
        else:
            h = hashes.Hash(algorithm)
            h.update(bytes(data))
            digest = h.finalize()
        raw = self._store.sign_raw(self._label, digest, Mechanism.ECDSA)
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    exchange = _refuse


class TokenRSAPrivateKey(_OnToken, rsa.RSAPrivateKey):
    """An RSA private key on the token (PKCS#1 v1.5 with SHA-256/384/512)."""

    _public: rsa.RSAPublicKey
    _V15 = {
        "sha256": Mechanism.SHA256_RSA_PKCS,
        "sha384": Mechanism.SHA384_RSA_PKCS,
        "sha512": Mechanism.SHA512_RSA_PKCS,
    }

    def sign(self, data: bytes, padding_: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15) or isinstance(algorithm, utils.Prehashed):
            raise TokenError("the token signs RSA with PKCS#1 v1.5 over unhashed data only")
        mechanism = self._V15.get(algorithm.name)
        if mechanism is None:
            raise TokenError(f"unsupported RSA hash {algorithm.name}")
        return self._store.sign_raw(self._label, bytes(data), mechanism)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    decrypt = _refuse
