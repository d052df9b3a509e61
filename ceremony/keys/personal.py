"""A person's own key: what they attest transcripts (and sign evidence packs) with.

Two kinds, behind one small protocol (:class:`PersonalKey`: ``public_key()``, ``sign(data)``, ``kind``,
``origin``, ``description``):

- a **token key** (:class:`TokenKey`): a key pair generated on the person's own PKCS#11 token (a smart
  card or a YubiKey; one SoftHSM2 token per person in tests), SENSITIVE, never EXTRACTABLE, able only to
  sign, labelled ``attestation``. The token is the person's, not the workspace's: it may live under
  another SoftHSM2 configuration than the one this process uses, so every operation on it runs in a
  forked process of its own (``ceremony.keys.pkcs11._lib``: one configuration per process). The PIN is
  handed to that process in memory (fork), never pickled, written or printed.
- a **file key** (:class:`FileKey`): a PEM private key file, for trying the tool only. Whoever holds the
  file can sign as its owner; every output that mentions one says :data:`FILE_KEY_NOTE`.

Signatures follow ``ceremony.keys.signatures`` (ECDSA with SHA-256, RSA PKCS#1 v1.5 with SHA-256,
Ed25519), so token and file signatures verify alike.
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ceremony.errors import CeremonyError, ConfigError, InputError, StateError, TokenError
from ceremony.fs import read_regular
from ceremony.keys.pkcs11 import Pkcs11KeyStore, find_softhsm_module
from ceremony.keys.signatures import sign
from ceremony.keys.store import KeyAttributes

KeyKind = Literal["token", "file"]
PersonalAlgorithm = Literal["ec-p256", "rsa-3072"]
ALGORITHMS: tuple[PersonalAlgorithm, ...] = ("ec-p256", "rsa-3072")
#: What every output says of a file key.
FILE_KEY_NOTE = "file key (for trying the tool only)"
#: The label of the attestation key pair on a person's token.
TOKEN_KEY_LABEL = "attestation"  # noqa: S105 - a key label, not a secret
#: A person's token PIN for tests and trials (otherwise it is typed at a prompt).
PIN_ENV = "CEREMONY_PERSON_PIN"
#: An encrypted key file's passphrase (file keys only).
PASSPHRASE_ENV = "CEREMONY_ATTESTATION_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
#: How long an enrolment's self-signed certificate is valid.
CERTIFICATE_DAYS = 3 * 365
_KEY_FILE_LIMIT = 64 * 1024
FilePrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
T = TypeVar("T")
_FORK = multiprocessing.get_context("fork")


class PersonalKey(Protocol):
    """A person's signing key, wherever it lives."""

    @property
    def kind(self) -> KeyKind:
        """``token`` (the person's own PKCS#11 token) or ``file`` (a PEM file, for trying the tool only)."""
        ...

    @property
    def origin(self) -> str:
        """The token's label, or ``file``."""
        ...

    @property
    def description(self) -> str:
        """What outputs call the key (never any secret)."""
        ...

    def public_key(self) -> Any:
        """The public key (a cryptography public key object)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """A signature over ``data`` (ECDSA-SHA256, RSA PKCS#1 v1.5-SHA256 or Ed25519)."""
        ...


def spki_der(public: Any) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key."""
    return bytes(public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


# --- file keys ----------------------------------------------------------------------------------------
class FileKey:
    """A private key read from a PEM file: for trying the tool only (whoever has the file signs as its owner)."""

    def __init__(self, key: FilePrivateKey, path: Path | None = None) -> None:
        self._key, self.path = key, path

    @property
    def kind(self) -> KeyKind:
        return "file"

    @property
    def origin(self) -> str:
        return "file"

    @property
    def description(self) -> str:
        return FILE_KEY_NOTE

    def public_key(self) -> Any:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return sign(self._key, data)

    def __repr__(self) -> str:
        return f"FileKey({str(self.path) if self.path else 'in memory'})"

    def __reduce__(self) -> Any:
        raise TypeError("a FileKey holds a private key and cannot be pickled")


def load_private_key_file(path: Path) -> FilePrivateKey:
    """A private key file (PEM; an encrypted one takes :data:`PASSPHRASE_ENV`)."""
    data = read_regular(path, _KEY_FILE_LIMIT, "private key file")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except (ValueError, TypeError):
        raise InputError(f"--key: {path} is not a PEM private key this passphrase opens") from None
    if not isinstance(key, FilePrivateKey):
        raise InputError(f"--key: {path} holds an unsupported key type")
    return key


def load_file_key(path: Path) -> FileKey:
    """The file key at ``path``."""
    return FileKey(load_private_key_file(path), path)


# --- token keys ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenRef:
    """Where a person's token key is: the token's label, its PKCS#11 module, and (SoftHSM2) its configuration."""

    token_label: str
    module: str
    conf: str | None = None
    key_label: str = TOKEN_KEY_LABEL


def token_ref(token_label: str | None, module: str | None = None, softhsm_conf: str | Path | None = None) -> TokenRef:
    """A checked :class:`TokenRef` from command-line values (the module defaults to SoftHSM2's)."""
    label = (token_label or "").strip()
    if not label or label != token_label:
        raise InputError(f"--token: give the label of your token (got {token_label!r})")
    if len(label.encode("utf-8")) > 32:
        raise InputError(f"--token: a token label is at most 32 bytes of UTF-8 (got {len(label.encode())})")
    if module is not None and not Path(module).is_file():
        raise InputError(f"--module: {module} is not a PKCS#11 module file")
    found = module or find_softhsm_module()
    if found is None:
        raise InputError("--module: name your token's PKCS#11 module (SoftHSM2 is not installed here)")
    conf = None
    if softhsm_conf is not None:
        if not Path(softhsm_conf).is_file():
            raise InputError(f"--softhsm-conf: {softhsm_conf} is not a file")
        conf = os.path.abspath(softhsm_conf)
    return TokenRef(label, found, conf)


def person_pin(person: str, token_label: str) -> str:
    """The PIN of ``person``'s token: :data:`PIN_ENV` (tests and trials), else typed at a terminal prompt."""
    pin = os.environ.get(PIN_ENV)
    if pin is None:
        try:
            interactive = sys.stdin is not None and sys.stdin.isatty()
        except (OSError, ValueError):
            interactive = False
        if not interactive:
            raise InputError(
                f"no PIN for {person}'s token {token_label!r}: type it at a terminal, or set {PIN_ENV} for a trial"
            )
        pin = getpass.getpass(f"{person}, the PIN of your token {token_label!r} (not shown): ")
    if not pin:
        raise InputError(f"the PIN for {person}'s token {token_label!r} is empty")
    return pin


def _answer(send: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        try:
            outcome: tuple[Any, ...] = ("ok", fn(*args))
        except CeremonyError as exc:  # messages never hold secrets (ceremony.errors)
            outcome = ("error", type(exc).__name__, exc.message)
        except Exception as exc:  # noqa: BLE001 - named by its class only: its text might hold anything
            outcome = ("error", "TokenError", f"the token process failed ({type(exc).__name__})")
        send.send_bytes(pickle.dumps(outcome))
    finally:
        send.close()
        os._exit(0)


_ERRORS: dict[str, type[CeremonyError]] = {
    "InputError": InputError,
    "StateError": StateError,
    "ConfigError": ConfigError,
}


def in_own_process(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a forked process of its own (a token under another SoftHSM2 configuration than this
    process's); its result, or its CeremonyError raised here (others as a TokenError naming their class)."""
    receive, send = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_answer, args=(send, fn, args))
    child.start()
    send.close()
    try:
        data = receive.recv_bytes()
    except EOFError:
        child.join()
        raise TokenError(f"the token process ended without an answer (exit code {child.exitcode})") from None
    finally:
        receive.close()
    child.join()
    outcome = pickle.loads(data)  # noqa: S301 - our own child's answer
    if outcome[0] == "ok":
        return outcome[1]  # type: ignore[no-any-return]
    raise _ERRORS.get(outcome[1], TokenError)(outcome[2])


def _with_store(ref: TokenRef, pin: str, work: Callable[[Pkcs11KeyStore], T]) -> T:
    store = Pkcs11KeyStore(ref.module, ref.token_label, pin, ref.conf)
    try:
        return work(store)
    finally:
        store.close()


def _public_on_token(ref: TokenRef, pin: str) -> bytes:
    return _with_store(ref, pin, lambda store: spki_der(store.load(ref.key_label).public_key()))


def _sign_on_token(ref: TokenRef, pin: str, data: bytes) -> bytes:
    return _with_store(ref, pin, lambda store: sign(store.load(ref.key_label), data))


def _attributes_on_token(ref: TokenRef, pin: str) -> KeyAttributes:
    return _with_store(ref, pin, lambda store: store.attributes(ref.key_label))


@dataclass(frozen=True)
class CertificateRequest:
    """What an enrolment's self-signed certificate says."""

    person: str
    organisation: str
    not_before: datetime
    days: int = CERTIFICATE_DAYS


def self_signed_certificate(key: Any, request: CertificateRequest) -> x509.Certificate:
    """A self-signed signature certificate (CN = person id, O = organisation; digitalSignature and
    nonRepudiation; not a CA) for ``key``, signed with ``key`` (ECDSA-SHA256 or RSA PKCS#1 v1.5-SHA256)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, request.person),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, request.organisation),
        ]
    )
    public = key.public_key()
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_before + timedelta(days=request.days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _enrol_on_token(
    ref: TokenRef, pin: str, algorithm: PersonalAlgorithm, request: CertificateRequest
) -> tuple[bytes, bool]:
    def work(store: Pkcs11KeyStore) -> tuple[bytes, bool]:
        created = ref.key_label not in store.labels()
        if not created:
            attributes = store.attributes(ref.key_label)
            if attributes.extractable or not attributes.sensitive:
                raise TokenError(
                    f"the key {ref.key_label!r} on token {ref.token_label!r} is extractable or not sensitive; "
                    "a participant's key must never leave their token"
                )
        key = store.generate(ref.key_label, algorithm, extractable=False) if created else store.load(ref.key_label)
        return self_signed_certificate(key, request).public_bytes(serialization.Encoding.DER), created

    return _with_store(ref, pin, work)


class TokenKey:
    """The attestation key on a person's own token; every use runs in a process of its own."""

    def __init__(self, ref: TokenRef, pin: str, public_der: bytes) -> None:
        self.ref = ref
        self._pin = pin
        self._public = serialization.load_der_public_key(public_der)

    @classmethod
    def open(cls, ref: TokenRef, pin: str) -> TokenKey:
        """The key labelled ``ref.key_label`` on the token (its public key is read now)."""
        return cls(ref, pin, in_own_process(_public_on_token, ref, pin))

    @property
    def kind(self) -> KeyKind:
        return "token"

    @property
    def origin(self) -> str:
        return self.ref.token_label

    @property
    def description(self) -> str:
        return f"key {self.ref.key_label!r} on token {self.ref.token_label!r}"

    def public_key(self) -> Any:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return in_own_process(_sign_on_token, self.ref, self._pin, bytes(data))

    def attributes(self) -> KeyAttributes:
        """The private key's protection attributes, read back from the token."""
        return in_own_process(_attributes_on_token, self.ref, self._pin)

    def __repr__(self) -> str:
        return f"TokenKey({self.ref.key_label!r} on {self.ref.token_label!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a TokenKey holds a PIN and cannot be pickled")


def enrol_token_key(
    ref: TokenRef, pin: str, algorithm: PersonalAlgorithm, request: CertificateRequest
) -> tuple[TokenKey, x509.Certificate, bool]:
    """Generate the attestation key pair on the person's token (or take the one there, by its label) and
    make its self-signed certificate; returns (key, certificate, whether the key pair was generated now)."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"--algorithm must be one of {', '.join(ALGORITHMS)} (got {algorithm!r})")
    der, created = in_own_process(_enrol_on_token, ref, pin, algorithm, request)
    certificate = x509.load_der_x509_certificate(der)
    return TokenKey(ref, pin, spki_der(certificate.public_key())), certificate, created
