"""The one error root the command line catches, and its few subclasses."""

from __future__ import annotations


class CeremonyError(Exception):
    """An operator-facing error: the input or the environment is not as required.

    The message is one short line saying what and why; ``hint`` says what to do.
    Messages never contain secrets (PINs, passphrases, shares, key material).
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The one line printed on stderr (plus the hint, when there is one)."""
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(CeremonyError):
    """Rejected input: a CSR, a certificate file, a request, a command-line value."""


class ConfigError(CeremonyError):
    """A YAML file (workspace, profile, ceremony) does not match its schema."""


class TokenError(CeremonyError):
    """The key store (PKCS#11 token or software store) refused or is missing."""


class StateError(CeremonyError):
    """The workspace is not in a state that allows the operation (e.g. a duplicate)."""
