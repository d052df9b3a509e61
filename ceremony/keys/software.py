"""Software key store: passphrase-encrypted PKCS#8 files, for trying the workbench without a token."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ceremony.errors import InputError, StateError, TokenError
from ceremony.fs import write_once
from ceremony.keys.store import KeyAttributes
from ceremony.model.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SUFFIX = ".key.pem"
_BACKUP_ALLOWED = ".backup-allowed"
_AES_SUFFIX = ".aes.json"
_EC_CURVES: dict[str, ec.EllipticCurve] = {"ec-p256": ec.SECP256R1(), "ec-p384": ec.SECP384R1()}
_RSA_BITS: dict[str, int] = {"rsa-3072": 3072}
_ALGORITHM_NAMES = ", ".join([*_EC_CURVES, *_RSA_BITS])


def _check_kek(kek: bytes) -> None:
    if len(kek) != 32:
        raise InputError("the backup key-encryption key must be 256 bits")


class SoftwareKeyStore:
    """Keys as ``<directory>/<label>.key.pem``: PKCS#8 encrypted with the store passphrase, mode 0600.

    This store is for trying the tool without a token. The key material exists on disk (encrypted)
    and in process memory, so none of a token's guarantees hold, and ``attributes`` says so.
    """

    kind: Literal["pkcs11", "software"] = "software"

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        """Use ``directory`` (created 0700 on first key) with ``passphrase`` for every key in it.

        Raises:
            TokenError: The passphrase is shorter than 16 bytes.
        """
        if len(passphrase) < 16:
            raise TokenError("the software store passphrase must be at least 16 characters")
        self.directory = directory
        self._passphrase = passphrase

    def __repr__(self) -> str:
        return f"SoftwareKeyStore({str(self.directory)!r})"

    def _path(self, label: str) -> Path:
        if not _LABEL.match(label):
            raise InputError(f"key label must be 1-64 letters, digits, '.', '_' or '-' (got {label!r})")
        return self.directory / f"{label}{_SUFFIX}"

    def labels(self) -> list[str]:
        """Labels of the keys in the store, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name.removesuffix(_SUFFIX) for p in self.directory.glob(f"*{_SUFFIX}"))

    def generate(self, label: str, algorithm: KeyAlgorithm, *, extractable: bool = False) -> CAPrivateKey:
        """Generate a key and write it once, encrypted, to ``<directory>/<label>.key.pem`` (0600).

        Args:
            label: The key's label and file name stem; an existing label is refused.
            algorithm: One of ec-p256, ec-p384, rsa-3072.
            extractable: Whether ``wrap`` may export it (a software key is on disk either way; this
                keeps the ceremony's backup decision enforced the same as on a token).

        Returns:
            The new private key.

        Raises:
            InputError: The label or algorithm is not allowed.
            TokenError: A key with this label exists.
        """
        self._path(label)  # the label is checked before a key is generated
        key: CAPrivateKey
        if algorithm in _EC_CURVES:
            key = ec.generate_private_key(_EC_CURVES[algorithm])
        elif algorithm in _RSA_BITS:
            key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[algorithm])
        else:
            raise InputError(f"key algorithm must be one of {_ALGORITHM_NAMES} (got {algorithm!r})")
        self._write(label, key)
        if extractable:
            self._backup_marker(label).touch(mode=0o600)
        return key

    def _backup_marker(self, label: str) -> Path:
        return self.directory / f"{label}{_BACKUP_ALLOWED}"

    def wrap(self, label: str, kek: bytes, mechanism: int) -> bytes:
        """The key as PKCS#8 encrypted under ``kek`` (PBES2, AES-256-CBC); ``mechanism`` is a token's concern.

        Raises:
            TokenError: The key was generated without a backup allowance, or does not exist.
        """
        key = self.load(label)
        if not self._backup_marker(label).exists():
            raise TokenError(f"key {label!r} was generated without a backup allowance; it cannot be wrapped")
        _check_kek(kek)
        return key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(kek.hex().encode()),
        )

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
        """Decrypt a ``wrap`` output with ``kek`` and store it under ``label`` (it must match ``public_key``);
        ``extractable`` gives the copy a backup allowance (a backup re-wrap's scratch copy).

        Raises:
            TokenError: Wrong key-encryption key or damaged backup, a key that does not match
                ``public_key``, or the label is taken.
        """
        _check_kek(kek)
        path = self._path(label)
        if path.exists():
            raise TokenError(f"the software store already holds a key labelled {label!r}")
        try:
            key = serialization.load_der_private_key(wrapped, kek.hex().encode())
        except (ValueError, TypeError):
            raise TokenError(f"cannot unwrap key {label!r} (wrong key-encryption key or damaged backup)") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) or key.public_key() != public_key:
            raise TokenError(f"the unwrapped key {label!r} does not match the CA's public key")
        self._write(label, key)
        if extractable:
            self._backup_marker(label).touch(mode=0o600)
        return key

    def _write(self, label: str, key: CAPrivateKey) -> None:
        """Write the key once, encrypted under the store passphrase, mode 0600."""
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            write_once(self._path(label), pem, mode=0o600, what="keys")
        except StateError as exc:
            raise TokenError(f"the software store already holds a key labelled {label!r}") from exc

    def destroy(self, label: str) -> None:
        """Delete the key file (a software store cannot wipe: the file system may keep copies)."""
        self._path(label).unlink(missing_ok=True)
        self._backup_marker(label).unlink(missing_ok=True)

    def forbid_export(self, label: str) -> KeyAttributes:
        """Withdraw the key's backup allowance, so ``wrap`` refuses it from now on. A software store cannot make a
        key unextractable: the key file stays on disk, readable by whoever has the passphrase, and the attributes
        returned say so (EXTRACTABLE stays true).

        Raises:
            TokenError: No such key, or the passphrase is wrong.
        """
        attributes = self.attributes(label)
        self._backup_marker(label).unlink(missing_ok=True)
        return attributes

    def wrap_mechanisms(self) -> None:
        """None: a software backup is PBES2-encrypted PKCS#8, not a PKCS#11 key wrap."""
        return None

    def load(self, label: str) -> CAPrivateKey:
        """Decrypt and return the key labelled ``label``.

        Raises:
            TokenError: No such key, the passphrase is wrong, or the file holds another key type.
        """
        path = self._path(label)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise TokenError(f"no key labelled {label!r} in the software store") from exc
        try:
            key = serialization.load_pem_private_key(data, self._passphrase)
        except (ValueError, TypeError) as exc:
            raise TokenError(f"cannot decrypt software key {label!r} (wrong passphrase?)") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TokenError(f"software key {label!r} is neither EC nor RSA")
        return key

    def attributes(self, label: str) -> KeyAttributes:
        """What a software key honestly is: not sensitive, extractable, generated here.

        Raises:
            TokenError: No such key, or the passphrase is wrong.
        """
        self.load(label)
        return KeyAttributes(
            label=label, sensitive=False, extractable=True, local=True, always_sensitive=False, never_extractable=False
        )

    # --- symmetric keys: RFC 5649-wrapped under a key derived (scrypt) from the store passphrase ----
    def _secret_path(self, label: str) -> Path:
        return self._path(label).with_name(f"{label}{_AES_SUFFIX}")

    def _store_kek(self, salt: bytes) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(self._passphrase)

    def _write_secret(self, label: str, value: bytes | bytearray, *, purpose: str, extractable: bool) -> str:
        import json

        from ceremony.keys.symmetric import kcv, wrap

        path = self._secret_path(label)
        if path.exists() or self._path(label).exists():
            raise TokenError(f"the software store already holds a key labelled {label!r}")
        salt = os.urandom(16)
        record = {
            "purpose": purpose,
            "extractable": extractable,
            "salt": salt.hex(),
            "wrapped": wrap(self._store_kek(salt), value).hex(),
        }
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_once(path, json.dumps(record).encode(), mode=0o600, what="keys")
        return kcv(value)

    def _read_secret(self, label: str) -> tuple[bytearray, dict[str, object]]:
        import json

        from ceremony.keys.symmetric import ComponentError, unwrap

        try:
            record = json.loads(self._secret_path(label).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenError(f"no secret key labelled {label!r} in the software store") from None
        try:
            return unwrap(self._store_kek(bytes.fromhex(record["salt"])), bytes.fromhex(record["wrapped"])), record
        except ComponentError:
            raise TokenError(f"cannot open software key {label!r} (wrong passphrase?)") from None

    def import_secret(self, label: str, value: bytes | bytearray, *, purpose: str, extractable: bool = False) -> str:
        """Store an AES key (encrypted under the passphrase); returns its KCV."""
        return self._write_secret(label, value, purpose=purpose, extractable=extractable)

    def generate_secret(self, label: str, length: int, *, purpose: str, extractable: bool = False) -> str:
        """A fresh AES key, stored at once; returns its KCV."""
        from ceremony.keys.symmetric import new_key, wipe

        key = new_key(length)
        try:
            return self._write_secret(label, key, purpose=purpose, extractable=extractable)
        finally:
            wipe(key)

    def secret_kcv(self, label: str) -> str:
        from ceremony.keys.symmetric import kcv, wipe

        key, _ = self._read_secret(label)
        try:
            return kcv(key)
        finally:
            wipe(key)

    def secret_attributes(self, label: str) -> KeyAttributes:
        """What a software key honestly is: not sensitive, extractable."""
        self._read_secret(label)
        return KeyAttributes(
            label=label, sensitive=False, extractable=True, local=True, always_sensitive=False, never_extractable=False
        )

    def wrap_secret(self, kek_label: str, label: str, mechanism: int) -> bytes:
        from ceremony.keys.symmetric import wipe, wrap

        key, record = self._read_secret(label)
        kek, kek_record = self._read_secret(kek_label)
        try:
            if not record["extractable"]:
                raise TokenError(f"key {label!r} was not declared for wrapped export")
            if kek_record["purpose"] != "kek":
                raise TokenError(f"key {kek_label!r} is not a key-encryption key")
            return wrap(kek, key)
        finally:
            wipe(key)
            wipe(kek)

    def unwrap_secret(
        self, kek_label: str, label: str, wrapped: bytes, mechanism: int, *, purpose: str, extractable: bool = False
    ) -> str:
        from ceremony.keys.symmetric import ComponentError, unwrap, wipe

        kek, _ = self._read_secret(kek_label)
        try:
            key = unwrap(kek, wrapped)
        except ComponentError:
            raise TokenError(f"cannot unwrap key {label!r} (wrong KEK or damaged data)") from None
        finally:
            wipe(kek)
        try:
            return self._write_secret(label, key, purpose=purpose, extractable=extractable)
        finally:
            wipe(key)

    def destroy_secret(self, label: str) -> None:
        """Delete the key file (a software store cannot wipe)."""
        self._secret_path(label).unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release."""
