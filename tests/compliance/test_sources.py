"""The evidence the checks read: dated by the workspace's clock, registers read on first use, ceremonies as records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ceremony.compliance.sources import CeremonyRecord, Evidence, MissingRegister, parse_time
from ceremony.errors import CeremonyError, ConfigError
from ceremony.issue.single import create_ca
from ceremony.model.config import data_dir
from ceremony.model.registers import Waivers
from ceremony.record.transcript import TranscriptReport
from ceremony.record.workspace import Workspace, init_workspace

FIXED = datetime(2027, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


@dataclass(frozen=True)
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws", key_store="software", purpose="test")
    yield workspace
    workspace.close()


# --- dating ----------------------------------------------------------------------------------
def test_as_of_defaults_to_now_by_the_workspace_s_clock(ws: Workspace) -> None:
    fixed = Workspace.open(ws.root, clock=FixedClock(FIXED))
    try:
        assert Evidence(fixed).as_of == FIXED
    finally:
        fixed.close()
    # A test workspace honours the suite's pinned clock (tests/conftest.py), not the machine's date.
    assert timedelta(0) <= Evidence(ws).as_of - datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc) < timedelta(days=1)


def test_an_explicit_as_of_is_kept(ws: Workspace) -> None:
    assert Evidence(ws, as_of=FIXED).as_of == FIXED


@pytest.mark.parametrize(
    ("since", "until", "inside"),
    [
        (None, None, [True, True, True, True]),
        (FIXED, None, [False, True, True, True]),
        (None, FIXED, [True, True, False, True]),
        (FIXED, FIXED, [False, True, False, True]),
    ],
)
def test_in_period_is_inclusive_and_an_undated_event_is_in(
    ws: Workspace, since: datetime | None, until: datetime | None, inside: list[bool]
) -> None:
    ev = Evidence(ws, as_of=FIXED, since=since, until=until)
    second = timedelta(seconds=1)
    assert [ev.in_period(w) for w in (FIXED - second, FIXED, FIXED + second, None)] == inside


def test_parse_time_gives_utc() -> None:
    assert parse_time("2026-12-01T11:00:00+01:00") == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_time("2026-12-01T11:00:00+01:00").tzinfo == timezone.utc


# --- registers -------------------------------------------------------------------------------
def test_a_missing_register_is_missing_even_though_data_has_an_example(ws: Workspace) -> None:
    assert (data_dir() / "registers" / "assessments.yaml").is_file()
    ev = Evidence(ws)
    with pytest.raises(MissingRegister) as err:
        ev.registers["assessments"]
    assert err.value.message == "the workspace keeps no assessments register (registers/assessments.yaml)"
    assert isinstance(err.value, CeremonyError)


def test_a_missing_waivers_file_means_nothing_is_waived(ws: Workspace) -> None:
    ev = Evidence(ws)
    waivers = ev.registers["waivers"]
    assert waivers == Waivers(schema_version=1, waivers=[])
    assert ev.registers["waivers"] is waivers


def test_a_register_the_workspace_keeps_is_read_from_it(ws: Workspace) -> None:
    (ws.root / "registers").mkdir()
    shutil.copy(data_dir() / "registers" / "waivers.yaml", ws.root / "registers" / "waivers.yaml")
    (waiver,) = Evidence(ws).registers["waivers"].waivers
    assert (waiver.control, waiver.approved_by, waiver.expires) == ("CER-08", "victor", "2027-03-31")


def test_a_malformed_register_fails_only_where_it_is_read(ws: Workspace) -> None:
    (ws.root / "registers").mkdir()
    (ws.root / "registers" / "hsms.yaml").write_text("schema_version: 1\nhsms: nonsense\n", encoding="utf-8")
    ev = Evidence(ws)
    with pytest.raises(ConfigError, match="hsms.yaml"):
        ev.registers["hsms"]
    assert ev.registers["waivers"].waivers == []


# --- what the workspace runs -----------------------------------------------------------------
def test_a_workspace_that_runs_nothing_yet_is_assessed_against_everything(ws: Workspace) -> None:
    ev = Evidence(ws)
    assert ev.scope == {"pki", "symmetric"}
    assert ev.token_objects == {"s1sp-ca-token": []}  # init's default label


def test_a_workspace_with_cas_runs_a_pki(ws: Workspace) -> None:
    create_ca(ws, "root", profile_name="ss1spca-root", common_name="Test Root", approved_by="alice")
    ev = Evidence(ws)
    assert ev.scope == {"pki"}
    assert ev.token_objects == {"s1sp-ca-token": ["ca-root"]}
    assert [e["event"] for e in ev.journal] == ["workspace.init", "ca.create"]
    assert ev.journal_status.ok and ev.journal_status.entries == 2


# --- ceremonies ------------------------------------------------------------------------------
def _entries() -> list[dict[str, Any]]:
    return [
        {
            "event": "start",
            "ceremony_id": "root-2026-12",
            "type": "root-key-generation",
            "time": "2026-12-01T09:00:00+00:00",
            "ceremony": {"date": "2026-12-01", "participants": {"officer": "alice", "witnesses": ["wendy"]}},
        },
        {
            "event": "step",
            "step": "generate",
            "time": "2026-12-01T09:10:00+00:00",
            "details": {
                "pin": {"shares": ["a", "b", "c"], "m": 2, "n": 3},
                "other": {"backup": {"shares": {}, "m": 1, "n": 1}},
            },
        },
        {"event": "step", "step": "certify", "time": "2026-12-01T09:20:00+00:00", "details": {}},
        {"event": "seal", "time": "2026-12-01T09:30:00+01:00"},
    ]


def _record(entries: list[dict[str, Any]], name: str = "t.jsonl") -> CeremonyRecord:
    return CeremonyRecord(Path("transcripts") / name, entries, TranscriptReport(True, "ok"))


def test_a_ceremony_record_reads_its_start_and_seal() -> None:
    record = _record(_entries())
    assert (record.ceremony_id, record.type, record.sealed) == ("root-2026-12", "root-key-generation", True)
    assert record.started == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    assert record.ended == datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc)
    assert record.day == date(2026, 12, 1)
    assert record.seats == {"officer": "alice", "witnesses": ["wendy"]}
    assert [e["step"] for e in record.steps("certify")] == ["certify"]
    assert record.steps("destroy") == []
    assert record.splits() == [{"shares": ["a", "b", "c"], "m": 2, "n": 3}, {"shares": {}, "m": 1, "n": 1}]


def test_a_ceremony_record_without_entries_falls_back_to_its_file() -> None:
    record = _record([], "orphan-2026.jsonl")
    assert (record.ceremony_id, record.type, record.sealed) == ("orphan-2026", "?", False)
    assert (record.started, record.ended, record.day, record.seats, record.splits()) == (None, None, None, {}, [])


def test_a_ceremony_s_day_is_its_file_s_date_else_its_start() -> None:
    entries = _entries()
    entries[0]["ceremony"]["date"] = "2026-11-30"
    assert _record(entries).day == date(2026, 11, 30)
    del entries[0]["ceremony"]
    assert _record(entries).day == date(2026, 12, 1)
    assert not _record(entries[:-1]).sealed


def test_every_live_transcript_is_read_but_not_attestations(ws: Workspace) -> None:
    lines = "".join(json.dumps(e) + "\n" for e in _entries())
    (ws.transcripts_dir / "root-2026-12.jsonl").write_text(lines, encoding="utf-8")
    (ws.transcripts_dir / "root-2026-12.attestations.jsonl").write_text('{"person": "alice"}\n', encoding="utf-8")
    ev = Evidence(ws, since=datetime(2026, 12, 2, tzinfo=timezone.utc))
    (record,) = ev.all_ceremonies
    assert record.ceremony_id == "root-2026-12" and len(record.entries) == 4
    assert not record.report.ok  # hand-written: no hash chain
    assert ev.ceremonies == []  # it started before the period


def _crl(key: Any, serials: list[int]) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]))
        .last_update(now)
        .next_update(now + timedelta(days=7))
    )
    for serial in serials:
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now)
        revoked = revoked.add_extension(x509.CRLReason(x509.ReasonFlags.superseded), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_a_crl_file_is_parsed_once_per_content_and_the_parsed_entries_kept_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from ceremony.compliance import sources

    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    data = _crl(key, [5, 6])
    first = sources.crl_file(data)
    assert sources.crl_file(bytes(data)) is first  # the same bytes, not the same object: parsed once
    assert [(s, r) for s, r, _ in first.entries] == [(f"{5:032X}", "superseded"), (f"{6:032X}", "superseded")]
    assert first.signed_by(key.public_key()) and not first.signed_by(other.public_key())
    assert sources.crl_file(b"\x30\x03\x02\x01\x00").crl is None  # not a CRL: no entries, nothing raised
    monkeypatch.setattr(sources, "_PARSED_ENTRIES_KEPT", 10)
    for n in range(4):
        sources.crl_file(_crl(key, [100 + n, 200 + n, 300 + n]))
    assert sources._kept[0] <= 10 and sources._kept[0] == sum(len(p.entries) + 1 for p in sources._parsed.values())
    assert sources.crl_file(data) is not first  # dropped, least recently read first, and parsed again
