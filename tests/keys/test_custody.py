"""Custody: every m-subset rebuilds the secret; m-1 shares and mistyped words fail without leaking words."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from shamir_mnemonic.wordlist import WORDLIST

from ceremony.keys.custody import (
    CustodyError,
    combine,
    combine_presented,
    confirm,
    every_quorum,
    new_secret,
    read_share_card,
    split,
    write_share_card,
)

CUSTODIANS = ["carol", "dave", "erin", "frank", "grace"]


@pytest.mark.parametrize("m, n", [(2, 3), (3, 5)])
def test_every_quorum_rebuilds_and_m_minus_1_fails(m: int, n: int) -> None:
    secret = new_secret()
    shares = split(secret, m, CUSTODIANS[:n])
    quorums = every_quorum(shares, m)
    assert len(quorums) == {(2, 3): 3, (3, 5): 10}[(m, n)]
    for quorum in quorums:
        assert combine([s.words for s in quorum]) == secret
    for short in every_quorum(shares, m - 1):
        with pytest.raises(CustodyError, match=f"{m - 1} distinct share\\(s\\) given; {m} are needed"):
            combine([s.words for s in short])


def test_a_repeated_share_does_not_count_twice() -> None:
    shares = split(new_secret(), 2, CUSTODIANS[:3])
    with pytest.raises(CustodyError, match="1 distinct share\\(s\\) given; 2 are needed"):
        combine([shares[0].words, shares[0].words.upper()])


def test_a_mistyped_word_fails_and_the_error_names_no_word() -> None:
    shares = split(new_secret(), 2, CUSTODIANS[:3])
    words = shares[1].words.split()
    words[6] = next(w for w in WORDLIST if w != words[6])  # a valid word, wrong place: checksum fails
    with pytest.raises(CustodyError) as err:
        combine([shares[0].words, " ".join(words)])
    assert err.value.message == "share 2: checksum failed (a mistyped or missing word?)"
    assert err.value.__cause__ is None and err.value.__suppress_context__
    words[6] = "zebrafish"
    with pytest.raises(CustodyError) as err:
        combine([shares[0].words, " ".join(words)])
    assert err.value.message == "share 2: word 7 is not in the SLIP-39 word list"
    for share in shares:
        assert not _leaks(share.words, err.value.message)


def test_shares_from_different_splits_are_refused() -> None:
    a, b = split(new_secret(), 2, CUSTODIANS[:3]), split(new_secret(), 2, CUSTODIANS[:3])
    with pytest.raises(CustodyError, match="do not belong to the same split"):
        combine([a[0].words, b[1].words])


def test_one_person_never_holds_two_shares() -> None:
    with pytest.raises(CustodyError, match="one person would hold two shares"):
        split(new_secret(), 2, ["carol", "carol", "erin"])


def test_share_card_is_private_and_round_trips(tmp_path: Path) -> None:
    secret = new_secret()
    shares = split(secret, 2, CUSTODIANS[:3])
    paths = [
        write_share_card(
            tmp_path / "share-cards", ceremony_id="c-1", purpose="user-pin", share=s, m=2, n=3, bag=f"TEB-{i}"
        )
        for i, s in enumerate(shares)
    ]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert combine([read_share_card(p) for p in paths[:2]]) == secret
    assert confirm(read_share_card(paths[0]), shares[0].fingerprint)
    assert not confirm(read_share_card(paths[1]), shares[0].fingerprint)
    assert shares[0].words not in repr(shares[0])


@pytest.mark.hsm
def test_token_activation_needs_m_pin_shares(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from ceremony.keys.custody import pin_from_secret
    from ceremony.keys.pkcs11 import Pkcs11KeyStore, find_softhsm_module, init_softhsm_token

    so_secret, user_secret = new_secret(16), new_secret(16)
    init_softhsm_token(
        tmp_path / "tok",
        tmp_path / "softhsm2.conf",
        "ca-token",
        pin_from_secret(so_secret),
        pin_from_secret(user_secret),
    )
    shares = split(user_secret, 3, CUSTODIANS)
    module = str(find_softhsm_module())
    with pytest.raises(CustodyError, match="2 distinct share\\(s\\) given; 3 are needed"):
        Pkcs11KeyStore(module, "ca-token", pin_from_secret(combine([s.words for s in shares[:2]])))
    store = Pkcs11KeyStore(module, "ca-token", pin_from_secret(combine([s.words for s in shares[2:]])))
    key = store.generate("ca-root", "ec-p256")
    key.public_key().verify(
        key.sign(b"activated", ec.ECDSA(hashes.SHA256())),
        b"activated",  # type: ignore[call-arg]
        ec.ECDSA(hashes.SHA256()),
    )
    store.close()


def test_more_than_m_shares_rebuild_the_secret_and_a_stranger_among_them_is_caught() -> None:
    secret = new_secret(32)
    shares = split(secret, 3, ["carol", "dave", "erin", "frank", "grace"])
    assert combine([s.words for s in shares]) == secret  # all five custodians present
    stranger = split(new_secret(32), 3, ["carol", "dave", "erin"])[0]
    with pytest.raises(CustodyError, match="the shares do not belong to the same split"):
        combine([s.words for s in shares[:3]] + [stranger.words])


def _leaks(share: str, message: str) -> bool:
    """Whether ``message`` carries two consecutive words of ``share`` (a single word may be one of the message's
    own: the SLIP-39 list holds common words such as "belong")."""
    words, said = share.split(), message.split()
    pairs = set(zip(said, said[1:], strict=False))
    return any(pair in pairs for pair in zip(words, words[1:], strict=False))


# --- shares presented by custodians: whose share is wrong ----------------------------------
def _mistyped(words: str, position: int = 6) -> str:
    typed = words.split()
    typed[position] = next(w for w in WORDLIST if w != typed[position])
    return " ".join(typed)


def _whose(presented: list[tuple[str, str]], expected: dict[str, str] | None = None) -> tuple[str | None, str]:
    with pytest.raises(CustodyError) as err:
        combine_presented(presented, expected=expected)
    for _, words in presented:
        assert not _leaks(words, err.value.message)  # never a run of any share's words
    return err.value.custodian, err.value.message


def test_presented_shares_rebuild_the_secret_in_any_order() -> None:
    secret = new_secret()
    carol, dave, erin = split(secret, 2, CUSTODIANS[:3])
    assert combine_presented([("erin", erin.words), ("carol", carol.words.upper())]) == secret
    assert combine_presented([("dave", dave.words), ("carol", carol.words), ("erin", erin.words)]) == secret


def test_a_mistyped_share_is_named_by_its_custodian() -> None:
    carol, dave, _ = split(new_secret(), 2, CUSTODIANS[:3])
    assert _whose([("carol", carol.words), ("dave", _mistyped(dave.words))]) == (
        "dave",
        "the share typed by dave fails its checksum (a word mistyped, missing or extra?)",
    )
    short = " ".join(carol.words.split()[:-1])
    assert _whose([("carol", short), ("dave", dave.words)])[0] == "carol"
    words = dave.words.split()
    words[3] = "zebrafish"
    assert _whose([("carol", carol.words), ("dave", " ".join(words))]) == (
        "dave",
        "word 4 of the share typed by dave is not in the SLIP-39 word list",
    )


def test_a_share_of_another_split_is_named_against_the_first_or_the_majority() -> None:
    carol, dave, erin = split(new_secret(), 2, CUSTODIANS[:3])
    stranger = split(new_secret(), 2, CUSTODIANS[:3])[1]
    assert _whose([("alice", carol.words), ("carol", stranger.words)]) == (
        "carol",
        "the share typed by carol does not belong to the same split as alice's",
    )
    # Three shares: the one of another split is wrong even when it was typed first.
    assert _whose([("carol", stranger.words), ("dave", dave.words), ("erin", erin.words)]) == (
        "carol",
        "the share typed by carol does not belong to the same split as dave's",
    )


def test_the_record_of_the_split_names_the_wrong_share_exactly() -> None:
    carol, dave, _ = split(new_secret(), 2, CUSTODIANS[:3])
    stranger = split(new_secret(), 2, CUSTODIANS[:3])[0]
    record = {"carol": carol.fingerprint, "dave": dave.fingerprint}
    # Typed first, carol's wrong share would be the reference; the record says it is hers that is wrong.
    assert _whose([("carol", stranger.words), ("dave", dave.words)], expected=record) == (
        "carol",
        "the share typed by carol is not the share carol was handed",
    )
    # dave typing carol's share: the same share twice.
    assert _whose([("carol", carol.words), ("dave", carol.words)]) == (
        "dave",
        "the share typed by dave is the same share as carol's",
    )
    # A stale record never refuses shares that rebuild the secret.
    stale = {"carol": stranger.fingerprint, "dave": stranger.fingerprint}
    assert combine_presented([("carol", carol.words), ("dave", dave.words)], expected=stale)


def test_too_few_presented_shares_name_nobody() -> None:
    carol, _, _ = split(new_secret(), 2, CUSTODIANS[:3])
    assert _whose([("carol", carol.words)]) == (None, "1 distinct share(s) given; 2 are needed")
    assert _whose([]) == (None, "no share was presented")
