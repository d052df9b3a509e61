"""AES keys on the token: import, generate, KCV on the token, RFC 5649 wrap and unwrap interoperating with
cryptography (key lengths that are multiples of 8, as SoftHSM pads other lengths before wrapping)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from ceremony.errors import TokenError
from ceremony.keys.software import SoftwareKeyStore
from ceremony.keys.symmetric import kcv, new_key, unwrap, wrap


def _round_trips(store, protected: bool) -> None:  # type: ignore[no-untyped-def]
    kek = new_key(32)
    kek_kcv = store.import_secret("kek-1", kek, purpose="kek")
    assert kek_kcv == kcv(kek)  # the token computes the same check value
    attributes = store.secret_attributes("kek-1")
    assert (attributes.sensitive, attributes.extractable) == ((True, False) if protected else (False, True))
    for length in (16, 32):  # multiples of 8: SoftHSM's RFC 5649 output is the standard one
        dmk = new_key(length)
        label = f"dmk-{length}"
        assert store.import_secret(label, dmk, purpose="data", extractable=True) == kcv(dmk)
        wrapped = store.wrap_secret("kek-1", label, 0x210A)
        assert wrapped == aes_key_wrap_with_padding(bytes(kek), bytes(dmk))  # the token agrees with cryptography
        assert bytes(unwrap(kek, wrapped, kcv(dmk))) == bytes(dmk)
        # ... and the other way: wrapped by software, unwrapped by the token, checked by KCV.
        assert store.unwrap_secret("kek-1", f"{label}-copy", wrap(kek, dmk), 0x210A, purpose="data") == kcv(dmk)
        copy = store.secret_attributes(f"{label}-copy")
        assert (copy.sensitive, copy.extractable) == ((True, False) if protected else (False, True))
    generated = store.generate_secret("tk-1", 32, purpose="data")
    assert len(generated) == 6 and generated == store.secret_kcv("tk-1")
    with pytest.raises(TokenError, match="not declared for wrapped export"):
        store.wrap_secret("kek-1", "tk-1", 0x210A)
    with pytest.raises(TokenError, match="already holds a key labelled 'tk-1'"):
        store.generate_secret("tk-1", 16, purpose="data")


@pytest.mark.hsm
def test_the_token_imports_generates_wraps_and_unwraps_interoperably(store) -> None:  # type: ignore[no-untyped-def]
    _round_trips(store, protected=True)
    assert store.secret_attributes("tk-1").local


def test_the_software_store_does_the_same_with_honest_attributes(tmp_path: Path) -> None:
    _round_trips(SoftwareKeyStore(tmp_path / "keys", b"a passphrase of some length"), protected=False)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "keys").iterdir())
