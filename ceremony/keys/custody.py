"""Custody: secrets split m-of-n into SLIP-39 shares (shamir-mnemonic), share cards, and recombination.

A share is shown only to its custodian: it goes into a share card file (mode 0600) under
``<workspace>/share-cards/``, to be printed and then deleted. Transcripts and outputs record
only a share's fingerprint. Errors name the share and word position, never their words; shares
presented by custodians (:func:`combine_presented`) are named by whose they are, so that the
custodian whose share is wrong can be asked to type it again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import shamir_mnemonic
from shamir_mnemonic.share import Share as _Slip39Share
from shamir_mnemonic.wordlist import WORD_INDEX_MAP

from ceremony.errors import CeremonyError
from ceremony.fs import make_dirs, write_private


class CustodyError(CeremonyError):
    """Shares that cannot rebuild a secret (too few, mistyped, from different splits).

    ``custodian`` names whose share is wrong, when one is (the message never quotes a word).
    """

    def __init__(self, message: str, *, custodian: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.custodian = custodian


@dataclass(frozen=True)
class Share:
    """One custodian's share. ``words`` is secret: it only ever goes onto the share card."""

    custodian: str
    index: int
    words: str

    @property
    def fingerprint(self) -> str:
        return share_fingerprint(self.words)

    def __repr__(self) -> str:  # never shows the words
        return f"Share(custodian={self.custodian!r}, index={self.index}, fingerprint={self.fingerprint!r})"


def share_fingerprint(words: str) -> str:
    """What the record keeps of a share: 16 hex digits of SHA-256 over its normalised words."""
    return hashlib.sha256(" ".join(words.lower().split()).encode()).hexdigest()[:16]


def new_secret(octets: int = 32) -> bytes:
    """A fresh secret from the OS CSPRNG (SLIP-39 needs at least 16 octets, an even number)."""
    return secrets.token_bytes(octets)


def split(secret: bytes, m: int, custodians: list[str]) -> list[Share]:
    """Split ``secret`` m-of-n, one share per custodian (n = len(custodians))."""
    if len(set(custodians)) != len(custodians):
        raise CustodyError("one person would hold two shares")
    if not 1 <= m <= len(custodians):
        raise CustodyError(f"a {m}-of-{len(custodians)} split is impossible")
    groups = shamir_mnemonic.generate_mnemonics(1, [(m, len(custodians))], secret)
    return [Share(c, i + 1, words) for i, (c, words) in enumerate(zip(custodians, groups[0], strict=True))]


def _check_share(position: int, words: str) -> None:
    for n, word in enumerate(words.lower().split(), start=1):
        if word not in WORD_INDEX_MAP:
            raise CustodyError(f"share {position}: word {n} is not in the SLIP-39 word list")
    try:
        _Slip39Share.from_mnemonic(" ".join(words.lower().split()))
    except shamir_mnemonic.MnemonicError:
        # ``from None``: the library's message quotes share words, which must not travel on.
        raise CustodyError(f"share {position}: checksum failed (a mistyped or missing word?)") from None


def combine(shares: list[str]) -> bytes:
    """Rebuild the secret from m shares; any error names the share position, never its words."""
    for position, words in enumerate(shares, start=1):
        _check_share(position, words)
    normalised = list(dict.fromkeys(" ".join(w.lower().split()) for w in shares))
    needed = _Slip39Share.from_mnemonic(normalised[0]).member_threshold
    if len(normalised) < needed:
        raise CustodyError(f"{len(normalised)} distinct share(s) given; {needed} are needed")
    try:
        secret = bytes(shamir_mnemonic.combine_mnemonics(normalised[:needed]))
        # More than m shares: each extra one must rebuild the same secret with m - 1 of the others.
        for extra in normalised[needed:]:
            if bytes(shamir_mnemonic.combine_mnemonics([*normalised[: needed - 1], extra])) != secret:
                raise CustodyError("the shares do not belong to the same split")
    except shamir_mnemonic.MnemonicError:
        raise CustodyError("the shares do not belong to the same split") from None
    return secret


def _normalised(words: str) -> str:
    return " ".join(words.lower().split())


def _parse_presented(custodian: str, words: str) -> _Slip39Share:
    for n, word in enumerate(_normalised(words).split(), start=1):
        if word not in WORD_INDEX_MAP:
            raise CustodyError(
                f"word {n} of the share typed by {custodian} is not in the SLIP-39 word list", custodian=custodian
            )
    try:
        return _Slip39Share.from_mnemonic(_normalised(words))
    except shamir_mnemonic.MnemonicError:
        # ``from None``: the library's message quotes share words, which must not travel on.
        raise CustodyError(
            f"the share typed by {custodian} fails its checksum (a word mistyped, missing or extra?)",
            custodian=custodian,
        ) from None


def _against_record(presented: Sequence[tuple[str, str]], expected: Mapping[str, str] | None) -> None:
    """When the shares cannot rebuild the secret: the first whose fingerprint is not the one handed to them."""
    for custodian, words in presented:
        recorded = (expected or {}).get(custodian)
        if recorded is not None and not secrets.compare_digest(share_fingerprint(words), recorded):
            raise CustodyError(
                f"the share typed by {custodian} is not the share {custodian} was handed", custodian=custodian
            )


def combine_presented(presented: Sequence[tuple[str, str]], *, expected: Mapping[str, str] | None = None) -> bytes:
    """Rebuild the secret from the (custodian, words) the custodians typed; a wrong share is named by whose it is.

    Each share is checked on its own first (SLIP-39 word list, then its RS1024 checksum), then against the
    others: the split most of them belong to (ties: the first typed) is taken as the right one, and a share of
    another split, or a second copy of one share, is the wrong one. ``expected`` (custodian -> fingerprint,
    from the record of the split) names the culprit exactly when the shares do not agree; it never refuses
    shares that rebuild the secret, so a stale record cannot block a good quorum.

    Raises:
        CustodyError: with ``custodian`` set, one share is wrong and that is whose; without, too few shares,
            or shares that agree in form yet rebuild no secret.
    """
    if not presented:
        raise CustodyError("no share was presented")
    parsed = [(custodian, _parse_presented(custodian, words)) for custodian, words in presented]
    splits = Counter(share.group_parameters() for _, share in parsed)
    most = max(splits.values())
    reference = next(s.group_parameters() for _, s in parsed if splits[s.group_parameters()] == most)
    anchor = next(c for c, s in parsed if s.group_parameters() == reference)
    holders: dict[int, str] = {}
    for custodian, share in parsed:
        if share.group_parameters() != reference:
            _against_record(presented, expected)
            raise CustodyError(
                f"the share typed by {custodian} does not belong to the same split as {anchor}'s", custodian=custodian
            )
        if share.index in holders:
            _against_record(presented, expected)
            raise CustodyError(
                f"the share typed by {custodian} is the same share as {holders[share.index]}'s", custodian=custodian
            )
        holders[share.index] = custodian
    needed = parsed[0][1].member_threshold
    if len(parsed) < needed:
        raise CustodyError(f"{len(parsed)} distinct share(s) given; {needed} are needed")
    words = [_normalised(w) for _, w in presented]
    try:
        secret = bytes(shamir_mnemonic.combine_mnemonics(words[:needed]))
    except shamir_mnemonic.MnemonicError:
        _against_record(presented, expected)
        names = ", ".join(c for c, _ in presented[:needed])
        raise CustodyError(f"the shares typed by {names} do not rebuild a secret (shares of another split?)") from None
    # More than m shares: each extra one must rebuild the same secret with m - 1 of the others.
    for (custodian, _), extra in zip(presented[needed:], words[needed:], strict=True):
        try:
            again = bytes(shamir_mnemonic.combine_mnemonics([*words[: needed - 1], extra]))
        except shamir_mnemonic.MnemonicError:
            again = b""
        if again != secret:
            _against_record(presented, expected)
            raise CustodyError(
                f"the share typed by {custodian} does not rebuild the same secret as the others'", custodian=custodian
            )
    return secret


def every_quorum(shares: list[Share], m: int) -> list[tuple[Share, ...]]:
    """Every m-subset of the shares (for proving that any quorum can rebuild the secret)."""
    return list(combinations(shares, m))


def pin_from_secret(secret: bytes) -> str:
    """The token PIN a secret stands for (hex: within every HSM's PIN alphabet and length)."""
    return secret.hex()


def write_share_card(
    directory: Path,
    *,
    ceremony_id: str,
    purpose: str,
    share: Share,
    m: int,
    n: int,
    bag: str | None,
    rehearsal: bool = False,
    trial: str | None = None,
) -> Path:
    """A share card for one custodian: mode 0600, to be printed, sealed in its bag, then deleted. ``trial``
    names a demo or test workspace, whose cards say so as a rehearsal's do."""
    make_dirs(directory, private=True)
    path = directory / f"{ceremony_id}.{purpose}.{share.custodian}.txt"
    words = share.words.split()
    numbered = "\n".join(f"  {i:2d}. {w}" for i, w in enumerate(words, start=1))
    text = (
        ("REHEARSAL - NOT A LIVE SHARE\n" if rehearsal else f"{trial} - NOT A LIVE SHARE\n" if trial else "")
        + f"SHARE CARD - {purpose} - ceremony {ceremony_id}\n"
        f"custodian: {share.custodian}   share {share.index} of {n} ({m} needed)\n"
        f"tamper-evident bag: {bag or '(none recorded)'}\n"
        f"fingerprint: {share.fingerprint}\n\n{numbered}\n\n"
        "Print this card, seal it in the bag named above, then delete this file.\n"
    )
    return write_private(path, text)


def read_share_card(path: Path) -> str:
    """The share words on a card written by ``write_share_card`` (unattended runs)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return " ".join(line.split(". ", 1)[1] for line in lines if line[:5].strip().rstrip(".").isdigit() and ". " in line)


def confirm(entered: str, fingerprint: str) -> bool:
    """At distribution: does the re-entered share match the fingerprint on record (nothing revealed)?"""
    return secrets.compare_digest(share_fingerprint(entered), fingerprint)


# --- shares deposited for unattended runs ---------------------------------------------------
_SHARE_SUFFIX = ".share"


def deposit(directory: Path, shares: list[Share]) -> list[Path]:
    """Rest ``shares`` in ``directory`` (0700; files 0600) for unattended runs to read."""
    make_dirs(directory, private=True)
    paths = []
    for share in shares:
        paths.append(write_private(directory / f"{share.custodian}{_SHARE_SUFFIX}", share.words + "\n"))
    return paths


def withdraw(directory: Path) -> int:
    """Remove the shares deposited in ``directory`` (their secret was replaced); returns how many were there."""
    paths = sorted(directory.glob(f"*{_SHARE_SUFFIX}")) if directory.is_dir() else []
    for path in paths:
        path.unlink()
    return len(paths)


def deposited(directory: Path) -> list[tuple[str, str]]:
    """(custodian, words) for every share deposited in ``directory``, by custodian id."""
    return [
        (path.name.removesuffix(_SHARE_SUFFIX), path.read_text(encoding="utf-8").strip())
        for path in sorted(directory.glob(f"*{_SHARE_SUFFIX}"))
    ]


def activation_secret(directory: Path) -> str:
    """The PIN (or passphrase) the shares deposited in ``directory`` rebuild."""
    return pin_from_secret(combine([words for _, words in deposited(directory)]))


def kcv(key: bytes) -> str:
    """Key check value of an AES key: the first 3 bytes of AES-ECB(key, 0^16), in hex (DOMAIN 4.5)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - a check value, not encryption
    return (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex().upper()
