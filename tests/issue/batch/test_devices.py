"""The batch's CSR fast path proven against the full parser (``parse_csr``), and the device list's row checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AttributeOID, NameOID
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ceremony.errors import InputError
from ceremony.issue.batch import PACKED, Reject, read_device_list, validate_row
from ceremony.issue.batch.devices import (
    MAX_DEVICE_FIELD_CHARS,
    MAX_DEVICE_LINE_BYTES,
    _split_csr,
    check_device_csr,
    recorded_digest,
    resolve_recorded,
    validate_chunk,
)
from ceremony.model.csr import parse_csr
from ceremony.model.der import hardware_module_name
from ceremony.model.profiles import get_profile
from ceremony.model.template import ECDSA_WITH_SHA256, der_length

DEVICE = get_profile("ss1sp-device", {})
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
HARDWARE_MODULE_NAME = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.4")
#: Examples per property (each signs and fully parses at least one CSR).
VALID = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MUTANTS = settings(VALID, max_examples=600)

keys = st.integers(min_value=1, max_value=P256_ORDER - 1).map(lambda d: ec.derive_private_key(d, ec.SECP256R1()))
names = st.lists(
    st.tuples(
        st.sampled_from([NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.LOCALITY_NAME]),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=24),
    ),
    max_size=3,
    unique_by=lambda attr: attr[0],  # parse_csr refuses a second CN, rightly
).map(lambda attrs: x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs]))


@st.composite
def csrs(
    draw: st.DrawFn, subject: st.SearchStrategy[x509.Name] = names, attributes: bool = True
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A P-256 CSR signed with ecdsa-with-SHA256 as cryptography builds it, with or without the parts a
    CSR might carry: a subject, and (``attributes``) a hardwareModuleName SAN, key usage, a challenge password."""
    key = draw(keys)
    builder = x509.CertificateSigningRequestBuilder().subject_name(draw(subject))
    if not attributes:
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER), key
    if draw(st.booleans()):
        eui64 = draw(st.binary(min_size=8, max_size=8))
        other = x509.OtherName(HARDWARE_MODULE_NAME, hardware_module_name("1.3.6.1.4.1.32473.2.1", eui64))
        builder = builder.add_extension(x509.SubjectAlternativeName([other]), critical=draw(st.booleans()))
    if draw(st.booleans()):
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
    if draw(st.booleans()):
        password = draw(st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A), min_size=1, max_size=16))
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, password.encode())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER), key


#: What a device sends (and every device list in the suite and the benchmark holds): empty subject, no attributes.
device_csrs = csrs(subject=st.just(x509.Name([])), attributes=False)
#: The same with the attributes a device might add (extensionRequest, challengePassword).
device_csrs_with_attributes = csrs(subject=st.just(x509.Name([])))


def _full_fields(der: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The five parts the splitter cuts out, as the full parsers see them (asn1crypto, cryptography)."""
    request = asn1_csr.CertificationRequest.load(der, strict=True)
    info = request["certification_request_info"]
    csr = x509.load_der_x509_csr(der)
    assert csr.tbs_certrequest_bytes == info.dump()
    return (
        csr.tbs_certrequest_bytes,
        request["signature_algorithm"].dump(),
        csr.signature,
        info["subject"].dump(),
        csr.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _full_verdict(der: bytes) -> bytes | None:
    """The point of a device CSR by the full parser's rules (``parse_csr`` under the device profile: P-256,
    ecdsa-with-SHA256, DER, proof of possession), with the batch's one rule more: an empty subject."""
    try:
        request = parse_csr(der, DEVICE, "csr")
    except InputError:
        return None
    if len(x509.load_der_x509_csr(der).subject) != 0:
        return None
    assert isinstance(request.public_key, ec.EllipticCurvePublicKey)
    return _point(request.public_key)


def _assemble(cri: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A CSR around ``cri`` as the device would send it: signed by its key, framed in DER."""
    signature = key.sign(cri, ec.ECDSA(hashes.SHA256()))
    bits = b"\x03" + der_length(len(signature) + 1) + b"\x00" + signature
    body = cri + ECDSA_WITH_SHA256 + bits
    return b"\x30" + der_length(len(body)) + body


def _edit(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Each edit (where, kind, value): overwrite, insert or delete one octet."""
    out = bytearray(data)
    for where, kind, value in edits:
        at = where % (len(out) + 1)
        if kind == 0 and at < len(out):
            out[at] = value
        elif kind == 1:
            out.insert(at, value)
        elif at < len(out):
            del out[at]
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 2), st.integers(0, 255)), min_size=1, max_size=4)
#: Octets that matter to the framing: tags, lengths, the INTEGER 0 of the version, long-form length prefixes.
framing_octets = st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x80, 0x81, 0x82, 0xA0, 0xA1, 0xFF])
framing_edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 2), framing_octets), min_size=1, max_size=3)


@VALID
@given(csrs())
def test_the_splitter_cuts_what_the_full_parser_reads(case: tuple[bytes, ec.EllipticCurvePrivateKey]) -> None:
    der, key = case
    request = parse_csr(der, DEVICE, "csr")  # every generated CSR is one the full parser accepts
    cri, alg, signature, subject, spki = _split_csr(der)
    assert (cri, alg, signature, subject, spki) == _full_fields(der)
    assert alg == ECDSA_WITH_SHA256 and request.signature_algorithm == "ecdsa-with-SHA256"
    assert spki[-65:] == _point(request.public_key) == _point(key.public_key())  # type: ignore[arg-type]
    # The fast path's verdict is the full parser's: the point for an empty subject, a refusal otherwise.
    verdict = check_device_csr(der, ca_point=None)
    full = _full_verdict(der)
    assert (verdict if isinstance(verdict, bytes) else None) == full
    assert full is not None or verdict == (
        "a device CSR must have an empty subject (the identity comes from the device list)"
    )


def _attributes(der: bytes) -> bytes:
    """The attributes element ([0] IMPLICIT SET OF Attribute) of a CSR the splitter reads."""
    cri, _, _, subject, spki = _split_csr(der)
    header = 2 if cri[1] < 0x80 else 2 + (cri[1] & 0x7F)
    return cri[header + 3 + len(subject) + len(spki) :]


def _agree(der: bytes) -> None:
    """The fast path and the full parser agree on ``der``: both accept it, with the same point and the splitter's
    parts equal to the full parser's, or both refuse it. The one exception is by design: the fast path does not
    read the attributes' contents (the certificate takes nothing from them), so where the full parser refuses
    only those, the CSR must have attributes."""
    verdict = check_device_csr(der, ca_point=None)
    full = _full_verdict(der)
    fast = verdict if isinstance(verdict, bytes) else None
    if full is not None:
        assert fast == full, f"the full parser accepts, the fast path says {verdict!r}: {der.hex()}"
        assert _split_csr(der) == _full_fields(der)
        event("both accept")
    elif fast is not None:
        assert _attributes(der) != b"\xa0\x00", f"the fast path accepts, the full parser refuses: {der.hex()}"
        event("attribute contents refused by the full parser only")
    else:
        event("both refuse")


@MUTANTS
@given(st.one_of(device_csrs, device_csrs_with_attributes), st.one_of(edits, framing_edits))
def test_a_mutated_csr_is_accepted_by_both_or_refused_by_both(
    case: tuple[bytes, ec.EllipticCurvePrivateKey], changes: list[tuple[int, int, int]]
) -> None:
    """Octets overwritten, inserted or deleted anywhere: outside the signed part, the signature still verifies,
    so only the framing decides."""
    der, _ = case
    _agree(_edit(der, changes))


@MUTANTS
@given(st.one_of(device_csrs, device_csrs_with_attributes), st.one_of(edits, framing_edits))
def test_a_device_signing_a_malformed_request_gets_the_same_verdict_from_both(
    case: tuple[bytes, ec.EllipticCurvePrivateKey], changes: list[tuple[int, int, int]]
) -> None:
    """The certificationRequestInfo edited and then signed by the device's own key, so that proof of possession
    holds and only the encoding decides (version, tags, lengths, what follows the key)."""
    der, key = case
    cri = _split_csr(der)[0]
    _agree(_assemble(_edit(cri, changes), key))


@VALID
@given(device_csrs, st.integers(0, 400), st.binary(max_size=8))
def test_a_truncated_or_extended_csr_is_refused_by_both(
    case: tuple[bytes, ec.EllipticCurvePrivateKey], keep: int, tail: bytes
) -> None:
    der, _ = case
    cut = der[: keep % len(der)] + tail
    _agree(cut)
    if cut != der:
        assert _full_verdict(cut) is None


BER_CASES = {
    # Encodings the full parser refuses that a byte-offset splitter would read, each signed by the device.
    "version-2": lambda cri: cri[:2] + b"\x02\x01\x01" + cri[5:],
    "version-long": lambda cri: cri[:2] + b"\x02\x02\x00\x00" + cri[5:],
    "version-not-an-integer": lambda cri: cri[:2] + b"\x04\x01\x00" + cri[5:],
    "subject-length-long-form": lambda cri: cri[:5] + b"\x30\x81\x00" + cri[7:],
    "no-attributes": lambda cri: cri[:-2],
    "attributes-not-context-0": lambda cri: cri[:-2] + b"\x31\x00",
    "data-after-attributes": lambda cri: cri + b"\x05\x00",
}


def _reframe(cri_body: bytes) -> bytes:
    return b"\x30" + der_length(len(cri_body)) + cri_body


@pytest.mark.parametrize("quirk", sorted(BER_CASES))
def test_a_device_signed_non_der_request_is_refused(quirk: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    cri = _split_csr(der)[0]
    header = 2 if cri[1] < 0x80 else 2 + (cri[1] & 0x7F)
    body = BER_CASES[quirk](b"\x30\x00" + cri[header:])[2:]  # edits are written against a 2-octet header
    mutant = _assemble(_reframe(body), key)
    assert _full_verdict(mutant) is None
    assert check_device_csr(mutant, ca_point=None) == "CSR is not well-formed DER"


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(lambda bits: b"\x04" + bits[1:], id="signature-in-an-octet-string"),
        pytest.param(lambda bits: b"\x03\x81" + bytes([bits[1]]) + bits[2:], id="signature-length-long-form"),
    ],
)
def test_a_non_der_envelope_is_refused(envelope: object) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    cri, alg, signature, _, _ = _split_csr(der)
    bits = envelope(b"\x03" + der_length(len(signature) + 1) + b"\x00" + signature)  # type: ignore[operator]
    body = cri + alg + bits
    mutant = b"\x30" + der_length(len(body)) + body
    assert _full_verdict(mutant) is None
    assert check_device_csr(mutant, ca_point=None) == "CSR is not well-formed DER"


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the batch fast path does not read a CSR's attributes, so it neither refuses a malformed "
    "extensionRequest nor compares a requested hardwareModuleName with the list's EUI-64 (DESIGN principle 7)",
)
def test_a_device_csr_asking_for_another_eui64_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = x509.OtherName(HARDWARE_MODULE_NAME, hardware_module_name("1.3.6.1.4.1.32473.2.1", bytes(8)))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName([other]), critical=True)
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    assert parse_csr(der, DEVICE, "csr").requested.eui64 == "0000000000000000"  # the device list says otherwise
    assert isinstance(check_device_csr(der, ca_point=None), str)


# --- rows --------------------------------------------------------------------------------------
def _list(tmp_path: Path, rows: list[str], files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "devices.csv"
    path.write_text("eui64,usage,csr\n" + "\n".join(rows) + "\n")
    return path


def test_a_valid_row_is_packed_eui64_usage_point_and_csr_digest_then_the_csr(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    data = der.public_bytes(serialization.Encoding.PEM)
    path = _list(tmp_path, ["00db123400000001,KA,a.pem"], {"a.pem": data})
    (row,) = read_device_list(path).rows()
    packed = validate_row(str(tmp_path), row, ca_point=None)
    csr = der.public_bytes(serialization.Encoding.DER)  # the file is PEM: the request carries the DER
    assert isinstance(packed, bytes) and len(packed) == PACKED + len(csr)
    assert packed[:8] == bytes.fromhex("00db123400000001") and packed[8] == 1
    assert packed[9:74] == _point(key.public_key())
    assert packed[74:PACKED] == hashlib.sha256(csr).digest()
    assert packed[PACKED:] == csr


def test_a_csr_for_the_cas_own_key_is_refused(tmp_path: Path) -> None:
    ca = ec.generate_private_key(ec.SECP256R1())
    der = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(ca, hashes.SHA256())
    path = _list(tmp_path, ["00DB123400000001,ds,ca.der"], {"ca.der": der.public_bytes(serialization.Encoding.DER)})
    (row,) = read_device_list(path).rows()
    outcome = validate_row(str(tmp_path), row, ca_point=_point(ca.public_key()))
    assert outcome == Reject(2, "00DB123400000001", "ds", "ca.der", "the CSR carries the CA's own public key")
    assert isinstance(validate_row(str(tmp_path), row, ca_point=None), bytes)


def test_validate_row_takes_the_ca_key_as_a_parameter() -> None:
    with pytest.raises(TypeError, match="ca_point"):
        validate_row("/nowhere", (2, "00DB123400000001", "ds", "a.der"))  # type: ignore[call-arg]


# --- bounded reading (DESIGN principle 9) ------------------------------------------------------------------------
def test_the_list_is_read_through_no_link_and_only_as_a_regular_file(tmp_path: Path) -> None:
    real = _list(tmp_path, ["00DB123400000001,ds,a.der"], {})
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with pytest.raises(InputError, match="a link is not followed"):
        read_device_list(link)
    with pytest.raises(InputError, match="is not a regular file"):
        read_device_list(tmp_path)
    with pytest.raises(InputError, match="is not a regular file"):
        read_device_list(Path("/dev/zero"))


def test_the_size_cap_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from ceremony.issue.batch import devices

    path = _list(tmp_path, ["00DB123400000001,ds,a.der"], {})
    monkeypatch.setattr(devices, "MAX_DEVICE_LIST_BYTES", 16)
    monkeypatch.setattr(os, "read", lambda *_: pytest.fail("read a list over the cap"))
    with pytest.raises(InputError, match=r"devices\.csv is 42 bytes; the limit is 16$"):
        read_device_list(path)


@pytest.mark.parametrize("length, ok", [(MAX_DEVICE_LINE_BYTES, True), (MAX_DEVICE_LINE_BYTES + 1, False)])
def test_a_line_is_bounded_and_named_not_quoted(tmp_path: Path, length: int, ok: bool) -> None:
    row = "00DB123400000001,ds,a.der"
    while len(row) < length:  # the rest of the line in further columns, each within the field cap
        row += "," + "q" * min(1000, length - len(row) - 1)
    assert len(row) == length
    path = _list(tmp_path, [row], {})
    if ok:
        (parsed,) = read_device_list(path).rows()
        assert parsed[:3] == (2, "00DB123400000001", "ds")
        return
    with pytest.raises(InputError) as err:
        read_device_list(path)
    assert err.value.message == f"{path}: line 2 is over {MAX_DEVICE_LINE_BYTES} bytes; not a device list"


def test_a_field_is_bounded_across_lines(tmp_path: Path) -> None:
    path = _list(tmp_path, ['00DB123400000001,ds,"' + "w" * 3000 + "\n" + "w" * 3000 + '"'], {})
    with pytest.raises(InputError) as err:
        read_device_list(path)
    assert err.value.message == f"{path}: line 3 has a field over {MAX_DEVICE_FIELD_CHARS} characters"


def test_the_header_is_refused_by_column_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("root:$6$hidden:19000,usage,csr\n00DB123400000001,ds,a.der\n")
    with pytest.raises(InputError) as err:
        read_device_list(path)
    assert err.value.message == f"{path}: the header must start eui64,usage,csr (column 1 is not eui64)"
    path.write_text("eui64,usage\n")
    with pytest.raises(InputError, match=r"\(it has 2 columns\)"):
        read_device_list(path)
    path.write_text("eui64,csr,usage\n00DB123400000001,a.der,ds\n")  # the order is the rule
    with pytest.raises(InputError) as err:
        read_device_list(path)
    assert err.value.message == f"{path}: the header must start eui64,usage,csr (column 2 is not usage)"


@pytest.mark.parametrize(
    "header, why",
    [
        ("eui64,usage,csr,serial,", "column 5 has no name"),
        ("eui64,usage,csr, ,serial", "column 4 has no name"),
        ("eui64,usage,csr,serial,Serial", "column 5 has the name of column 4"),
        ("eui64,usage,csr,csr", "column 4 has the name of column 3"),
    ],
)
def test_a_further_column_needs_a_name_of_its_own(tmp_path: Path, header: str, why: str) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(header + "\n00DB123400000001,ds,a.der,1,2\n")
    with pytest.raises(InputError) as err:
        read_device_list(path)
    assert err.value.message == f"{path}: the header's further columns need names of their own ({why})"


def test_a_list_with_further_columns_is_read_by_its_first_three(tmp_path: Path) -> None:
    """DESIGN.md: at least the columns eui64, usage, csr; more columns are allowed (a compromise's plan adds the
    serial it replaces). The further columns are not read, and a row may leave them out."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    (tmp_path / "a.der").write_bytes(der.public_bytes(serialization.Encoding.DER))
    path = tmp_path / "devices.csv"
    path.write_text("EUI64, Usage ,csr,serial,note\n00DB123400000001,ds,a.der,0A1B,first\n00DB123400000002,ka,a.der\n")
    listing = read_device_list(path)
    assert listing.count == 2
    rows = list(listing.rows())
    assert rows == [(2, "00DB123400000001", "ds", "a.der"), (3, "00DB123400000002", "ka", "a.der")]
    assert all(isinstance(validate_row(str(tmp_path), row, ca_point=None), bytes) for row in rows)


def test_line_endings_and_a_bom_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_bytes(b"\xef\xbb\xbfeui64,usage,csr\r\n00DB123400000001,DS,a.der\r00DB123400000002,ka,b.der\n")
    listing = read_device_list(path)
    assert listing.count == 2
    assert list(listing.rows()) == [(2, "00DB123400000001", "ds", "a.der"), (3, "00DB123400000002", "ka", "b.der")]
    assert listing.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_csr_path_that_is_not_a_regular_file_is_a_reject(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "a.der")
    (row,) = read_device_list(_list(tmp_path, ["00DB123400000001,ds,a.der"], {})).rows()
    outcome = validate_row(str(tmp_path), row, ca_point=None)
    assert isinstance(outcome, Reject) and outcome.reason == "CSR is not a regular file"


# --- recorded CSRs (re-certification from the inventory's archive) -----------------------------------------------
def _device_csr() -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return der.public_bytes(serialization.Encoding.DER), key


def test_a_recorded_cell_names_a_sha256() -> None:
    digest = "Ab" * 32
    assert recorded_digest(f"recorded:{digest}") == digest.lower()
    for cell in ("recorded:" + "ab" * 31, "recorded:" + "zz" * 32, "recorded: " + "ab" * 32, "ab" * 32, "csr/a.der"):
        assert recorded_digest(cell) is None


def test_a_recorded_row_is_checked_as_a_csr_file_is(tmp_path: Path) -> None:
    der, key = _device_csr()
    cell = f"recorded:{hashlib.sha256(der).hexdigest()}"
    row = (2, "00DB123400000001", "ds", cell)
    packed = validate_row(str(tmp_path), row, ca_point=None, recorded=der)
    assert isinstance(packed, bytes)
    assert packed[9:74] == _point(key.public_key()) and packed[74:PACKED] == hashlib.sha256(der).digest()
    assert packed[PACKED:] == der
    # Proof of possession again, as for a file: an archived CSR whose signature no longer verifies is refused.
    broken = bytearray(der)
    broken[-5] ^= 0x01
    assert validate_row(str(tmp_path), row, ca_point=None, recorded=bytes(broken)) == Reject(
        2, "00DB123400000001", "ds", cell, "CSR signature does not verify (no proof of possession)"
    )
    # The CA's own key is refused as from a file.
    assert validate_row(str(tmp_path), row, ca_point=_point(key.public_key()), recorded=der) == Reject(
        2, "00DB123400000001", "ds", cell, "the CSR carries the CA's own public key"
    )
    # The inventory's reason is the row's; and a row no archive was consulted for is refused, never read as a path.
    assert validate_row(str(tmp_path), row, ca_point=None, recorded="no such CSR") == Reject(
        2, "00DB123400000001", "ds", cell, "no such CSR"
    )
    (tmp_path / "recorded:x").write_bytes(der)
    refused = validate_row(str(tmp_path), row, ca_point=None)
    assert isinstance(refused, Reject) and refused.reason.startswith("a recorded CSR comes from the inventory")
    bad = validate_row(str(tmp_path), (3, "00DB123400000001", "ds", "recorded:x"), ca_point=None, recorded=der)
    assert isinstance(bad, Reject) and bad.reason == "recorded: must be followed by the CSR's SHA-256 (64 hex digits)"
    # The row's own checks come first.
    first = validate_row(str(tmp_path), (4, "00DB12340000000Z", "ds", cell), ca_point=None, recorded=der)
    assert isinstance(first, Reject) and first.reason == "EUI-64 must be 16 hex digits"


def test_the_parent_looks_up_the_recorded_rows_of_a_chunk_at_once(tmp_path: Path) -> None:
    der, _ = _device_csr()
    digest = hashlib.sha256(der).hexdigest()
    rows = [
        (2, "00db123400000001", "ds", f"recorded:{digest.upper()}"),
        (3, "00DB123400000002", "ka", "csr/b.der"),
        (4, "00DB123400000003", "ka", "recorded:" + "00" * 32),
    ]
    asked: list[list[tuple[str, str, str]]] = []

    def lookup(requests: object) -> list[bytes | str]:
        asked.append(list(requests))  # type: ignore[call-overload]
        return [der, "not archived"]

    recorded = resolve_recorded(rows, lookup)
    assert asked == [[("00DB123400000001", "ds", digest), ("00DB123400000003", "ka", "00" * 32)]]
    assert recorded == {2: der, 4: "not archived"}
    assert resolve_recorded(rows[1:2], lookup) == {} and len(asked) == 1  # no recorded row: no look-up
    outcomes = validate_chunk(str(tmp_path), b"", (rows, recorded))
    assert isinstance(outcomes[0], bytes) and outcomes[0][PACKED:] == der
    assert [o.reason for o in outcomes[1:] if isinstance(o, Reject)][1] == "not archived"
