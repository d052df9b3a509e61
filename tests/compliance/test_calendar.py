"""The calendar of what falls due: each kind of item from its source, its status as of a date, the --until bound,
the gaps a missing or malformed register leaves, and control GOV-07 (nothing overdue) on a workspace."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509

from ceremony.compliance.assessment import run_control
from ceremony.compliance.calendar import (
    CaCertificate,
    Calendar,
    CalendarItem,
    Dating,
    a_year_after,
    add_months,
    build_calendar,
    ca_items,
    crl_items,
    key_items,
    parse_until,
    people_items,
    workspace_calendar,
)
from ceremony.compliance.sources import Evidence
from ceremony.errors import InputError
from ceremony.issue.crl import publish_crl
from ceremony.model.catalogue import load_catalogue
from ceremony.model.people import Register
from ceremony.model.policy import load_policy
from ceremony.record.crls import CRLRecord
from ceremony.record.symmetric_keys import add_symmetric_key
from ceremony.record.workspace import Workspace
from tests.support.calendar_registers import day_from as _day
from tests.support.calendar_registers import set_people, write_registers
from tests.support.records import symmetric_key

AS_OF = datetime(2027, 3, 10, 12, 0, tzinfo=timezone.utc)
POLICY = load_policy()
GOV_07 = load_catalogue().get("GOV-07")


@pytest.fixture
def estate(ca_workspace: Workspace) -> Iterator[Workspace]:
    """Root and issuing CA (software store), the issuing CA's CRL and the root's ARL, a data key rotating in 60
    days, alice and bob in the register, the documents and assessments registers."""
    ws = ca_workspace
    now = ws.clock.now()
    publish_crl(ws, "issuing", by="bob")
    publish_crl(ws, "root", by="bob")
    with ws.inventory.transaction() as db:
        add_symmetric_key(db, symmetric_key("s1sp-dmk-1", rotation_due=(now + timedelta(days=60)).isoformat(),
                                            expires_at=(now + timedelta(days=120)).isoformat()))  # fmt: skip
        add_symmetric_key(db, symmetric_key("s1sp-dmk-0", state="deactivated", rotation_due=_day(now, -30),
                                            expires_at=_day(now, -10)))  # fmt: skip
    set_people(ws.root, alice=(_day(now, 400), _day(now, 20)), bob=(_day(now, 500), _day(now, 300)))
    write_registers(ws.root, now)
    yield ws


SOFTWARE = pytest.mark.parametrize("key_store_kind", ["software"])  # the calendar reads no key: one store will do


def _ca_not_after(ws: Workspace, name: str) -> datetime:
    return x509.load_der_x509_certificate(ws.inventory.ca_certificate_der(name)).not_valid_after_utc


def _by(cal: Calendar) -> dict[tuple[str, str], CalendarItem]:
    return {(i.kind, i.subject): i for i in cal.items}


# --- one of each kind, from the workspace -----------------------------------------------------------------
@SOFTWARE
def test_each_kind_of_item_comes_from_its_source_with_its_clause(estate: Workspace) -> None:
    ev = Evidence(estate)
    until = ev.as_of.date() + timedelta(days=25 * 366)
    cal = workspace_calendar(ev, until)
    assert cal.gaps == ()
    items = _by(cal)
    now = ev.as_of
    root_after, issuing_after = _ca_not_after(estate, "root"), _ca_not_after(estate, "issuing")
    windows = POLICY.keys.ca_renewal_window_days
    assert windows is not None
    crl = estate.inventory._execute("SELECT next_update FROM crls WHERE issuer_ca = 'issuing'").fetchone()[0]
    arl = estate.inventory._execute("SELECT next_update FROM crls WHERE issuer_ca = 'root'").fetchone()[0]
    people, documents = "RFC 3647 5.3 [S]; people.yaml", "S1SPKM CP 1.5; SMKI PMA approves the CPS [S]"
    expected = {
        ("ca-expiry", "CA root"): (root_after.date(), "later",
                                   "S1SPKI CP (Secure) 7.1 profile A: SS1SPCA Root certificate"),
        ("ca-expiry", "CA issuing"): (issuing_after.date(), "later",
                                      "S1SPKI CP (Secure) 7.1 profile B: SS1SPCA Issuing certificate"),
        ("ca-renewal", "CA root"): ((root_after - timedelta(days=windows.root)).date(), "later",
                                    "policy: keys.ca_renewal_window_days.root"),
        ("ca-renewal", "CA issuing"): ((issuing_after - timedelta(days=windows.issuing)).date(), "later",
                                       "policy: keys.ca_renewal_window_days.issuing"),
        ("crl-next-update", "crl issuing"): (datetime.fromisoformat(crl).date(), "due soon",
                                             "policy: revocation.crl_next_update_hours"),
        ("arl-next-update", "arl root"): (datetime.fromisoformat(arl).date(), "later",
                                          "policy: revocation.arl_next_update_days"),
        ("key-rotation", "key s1sp-dmk-1"): ((now + timedelta(days=60)).date(), "later",
                                             "KEY-07: SEC Appendix AT rotation [S]; crypto-periods [P]; rotation_days "
                                             "set by ceremony sym-2026-12"),
        ("key-expiry", "key s1sp-dmk-1"): ((now + timedelta(days=120)).date(), "later",
                                           "KEY-07: SEC Appendix AT rotation [S]; crypto-periods [P]; "
                                           "crypto_period_days set by ceremony sym-2026-12"),
        ("vetting-expiry", "person alice"): (now.date() + timedelta(days=400), "later", people),
        ("training-expiry", "person alice"): (now.date() + timedelta(days=20), "due soon", people),
        ("vetting-expiry", "person bob"): (now.date() + timedelta(days=500), "later", people),
        ("training-expiry", "person bob"): (now.date() + timedelta(days=300), "later", people),
        ("document-review", "s1spki-cp 1.2"): (now.date() + timedelta(days=200), "later",
                                               f"{documents}; registers/documents.yaml"),
        ("assessment-due", "annual assessment"): (add_months(now.date() - timedelta(days=100), 12), "later",
                                                  "policy: compliance.annual_assessment_months"),
        ("finding-due", "AA-1-F1"): (now.date() + timedelta(days=10), "due soon",
                                     "S1SPKM Compliance Policy: remedial action plan [S]; AA-1"),
    }  # fmt: skip
    assert {k: (i.date, i.status, i.source) for k, i in items.items()} == expected
    assert [i.date for i in cal.items] == sorted(i.date for i in cal.items)
    assert items[("crl-next-update", "crl issuing")].detail == f"CRL #1 nextUpdate {crl}"
    assert items[("vetting-expiry", "person alice")].detail.startswith("Alice ")
    assert cal.overdue == ()


@SOFTWARE
def test_the_default_until_is_a_year_on_and_later_items_are_left_off(estate: Workspace) -> None:
    ev = Evidence(estate)
    cal = workspace_calendar(ev)
    assert cal.until == a_year_after(ev.as_of.date())
    assert all(i.date <= cal.until for i in cal.items)
    kinds = {(i.kind, i.subject) for i in cal.items}
    assert ("vetting-expiry", "person alice") not in kinds and ("ca-expiry", "CA root") not in kinds
    assert ("training-expiry", "person bob") in kinds and ("key-expiry", "key s1sp-dmk-1") in kinds


@SOFTWARE
def test_what_has_passed_is_overdue_and_shown_whatever_the_until(estate: Workspace) -> None:
    """Assessed the day after the issuing CA expires: its certificate, its CRL, the key, the training, the review,
    the assessment and the finding are all overdue; its renewal window is open (due soon, never overdue)."""
    issuing_after = _ca_not_after(estate, "issuing")
    ev = Evidence(estate, as_of=issuing_after + timedelta(days=1))
    cal = workspace_calendar(ev, ev.as_of.date())
    overdue = {(i.kind, i.subject) for i in cal.overdue}
    assert overdue == {
        ("ca-expiry", "CA issuing"), ("crl-next-update", "crl issuing"), ("arl-next-update", "arl root"),
        ("key-rotation", "key s1sp-dmk-1"), ("key-expiry", "key s1sp-dmk-1"),
        ("vetting-expiry", "person alice"), ("training-expiry", "person alice"),
        ("vetting-expiry", "person bob"), ("training-expiry", "person bob"),
        ("document-review", "s1spki-cp 1.2"), ("assessment-due", "annual assessment"), ("finding-due", "AA-1-F1"),
    }  # fmt: skip
    items = _by(cal)
    assert items[("ca-renewal", "CA issuing")].status == "due soon"  # open since, never overdue
    assert ("ca-expiry", "CA root") not in items  # after --until, and not passed


def test_a_person_who_has_left_falls_due_no_more() -> None:
    register = Register.model_validate({"schema_version": 1, "people": {
        pid: {"name": pid, "organisation": "DCC", "roles": ["custodian"], "vetting_expires": "2027-01-01",
              "training_expires": "2027-01-02", "left": left}
        for pid, left in (("stays", None), ("left", "2027-03-10"), ("leaves", "2027-03-11"))
    }})  # fmt: skip
    items = people_items(register, "RFC 3647 5.3", Dating(AS_OF, 30))
    assert [(i.subject, i.kind, i.status) for i in items] == [
        ("person stays", "vetting-expiry", "overdue"),
        ("person stays", "training-expiry", "overdue"),
        ("person leaves", "vetting-expiry", "overdue"),
        ("person leaves", "training-expiry", "overdue"),
    ]


# --- status, pure -----------------------------------------------------------------------------------------
def test_a_time_is_overdue_once_passed_a_date_only_the_day_after() -> None:
    dating = Dating(AS_OF, 30)
    assert dating.status(AS_OF - timedelta(seconds=1)) == "overdue"
    assert dating.status(AS_OF + timedelta(seconds=1)) == "due soon"
    assert dating.status(AS_OF.date()) == "due soon"  # due all day
    assert dating.status(AS_OF.date() - timedelta(days=1)) == "overdue"
    assert dating.status(AS_OF.date() + timedelta(days=30)) == "due soon"
    assert dating.status(AS_OF.date() + timedelta(days=31)) == "later"
    assert dating.status(AS_OF.date() - timedelta(days=400), opens=True) == "due soon"
    assert Dating(AS_OF, 0).status(AS_OF.date() + timedelta(days=1)) == "later"


def test_only_the_latest_crl_of_each_ca_and_kind_is_dated() -> None:
    def crl(issuer: str, number: int, kind: str, next_update: datetime) -> CRLRecord:
        return CRLRecord(issuer, number, kind, AS_OF.isoformat(), next_update.isoformat(), 0, "00", "a")

    stale, fresh = AS_OF - timedelta(hours=1), AS_OF + timedelta(days=6)
    published = [crl("issuing", 2, "crl", fresh), crl("issuing", 1, "crl", stale), crl("root", 1, "arl", stale)]
    items = crl_items(published, Dating(AS_OF, 1))
    assert [(i.subject, i.status, i.detail) for i in items] == [
        ("crl issuing", "later", f"CRL #2 nextUpdate {fresh.isoformat()}"),
        ("arl root", "overdue", f"ARL #1 nextUpdate {stale.isoformat()}"),
    ]


def test_keys_no_longer_live_fall_due_no_more_and_an_imported_key_says_so() -> None:
    keys = [symmetric_key(f"k-{state}", state=state, ceremony_id=None) for state in
            ("pre-active", "active", "suspended", "deactivated", "compromised", "destroyed")]  # fmt: skip
    items = key_items(keys, "KEY-07: x", Dating(AS_OF, 30))
    assert sorted({i.subject for i in items}) == ["key k-active", "key k-pre-active", "key k-suspended"]
    assert {i.source for i in items} == {"KEY-07: x; rotation_days set by its import",
                                         "KEY-07: x; crypto_period_days set by its import"}  # fmt: skip


def test_a_renewal_window_by_role() -> None:
    not_after = datetime(2038, 12, 1, 10, tzinfo=timezone.utc)
    cas = [CaCertificate("r", "root", not_after, "A"), CaCertificate("i", "issuing", not_after, "B")]
    windows = POLICY.keys.ca_renewal_window_days
    assert windows is not None and windows.root != windows.issuing
    renewals = [i for i in ca_items(cas, POLICY, Dating(AS_OF, 30)) if i.kind == "ca-renewal"]
    assert [(i.subject, i.date) for i in renewals] == [
        ("CA r", (not_after - timedelta(days=windows.root)).date()),
        ("CA i", (not_after - timedelta(days=windows.issuing)).date()),
    ]


def test_an_older_parameter_file_without_the_window_dates_no_renewal() -> None:
    older = POLICY.model_copy(update={"keys": POLICY.keys.model_copy(update={"ca_renewal_window_days": None})})
    cas = [CaCertificate("r", "root", datetime(2038, 12, 1, tzinfo=timezone.utc), "A")]
    assert [i.kind for i in ca_items(cas, older, Dating(AS_OF, 30))] == ["ca-expiry"]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 9, 14), 12, date(2027, 9, 14)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 12, 15), 1, date(2028, 1, 15)),
        (date(2026, 11, 30), 13, date(2027, 12, 30)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_months_last(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_build_calendar_sorts_and_keeps_overdue_items_before_until() -> None:
    def item(day: date, subject: str, status: Any) -> CalendarItem:
        return CalendarItem(day, "document-review", subject, status, "s")

    old = item(date(2020, 1, 1), "old", "overdue")
    items = [item(date(2027, 6, 1), "b", "later"), item(date(2030, 1, 1), "far", "later"), old]
    cal = build_calendar(AS_OF, date(2028, 1, 1), items)
    assert [i.subject for i in cal.items] == ["old", "b"] and cal.overdue == (old,)


# --- --until --------------------------------------------------------------------------------------------
def test_until_defaults_to_a_year_on_and_takes_an_iso_date() -> None:
    assert parse_until(None, AS_OF) == date(2028, 3, 10)
    assert parse_until(None, datetime(2028, 2, 29, tzinfo=timezone.utc)) == date(2029, 2, 28)
    assert parse_until("2027-03-10", AS_OF) == date(2027, 3, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-02-30", "--until must be an ISO date, YYYY-MM-DD (got '2027-02-30')"),
        ("next year", "--until must be an ISO date, YYYY-MM-DD (got 'next year')"),
        ("2027-03-09", "--until must not be before today, 2027-03-10 (got '2027-03-09')"),
    ],
)
def test_a_bad_until_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_until(text, AS_OF)
    assert err.value.message == message


# --- gaps -----------------------------------------------------------------------------------------------
@SOFTWARE
def test_registers_the_workspace_does_not_keep_are_gaps_and_the_rest_is_dated(ca_workspace: Workspace) -> None:
    cal = workspace_calendar(Evidence(ca_workspace))
    assert [str(g) for g in cal.gaps] == [
        "documents register: the workspace keeps no documents register (registers/documents.yaml)",
        "assessments register: the workspace keeps no assessments register (registers/assessments.yaml)",
    ]
    assert {i.kind for i in cal.items} == {"vetting-expiry", "training-expiry"}  # the CAs expire after a year
    far = workspace_calendar(Evidence(ca_workspace), date(2060, 1, 1))
    assert {"ca-expiry", "ca-renewal"} <= {i.kind for i in far.items}


@SOFTWARE
def test_a_malformed_register_is_a_gap_naming_it(estate: Workspace) -> None:
    (estate.root / "registers" / "documents.yaml").write_text("schema_version: 1\ndocuments: [{id: x}]\n")
    cal = workspace_calendar(Evidence(estate))
    (gap,) = cal.gaps
    assert gap.source == "documents register" and "documents.yaml" in gap.reason and "documents.0" in gap.reason
    assert "document-review" not in {i.kind for i in cal.items} and "finding-due" in {i.kind for i in cal.items}


# --- GOV-07 ---------------------------------------------------------------------------------------------
@SOFTWARE
def test_gov07_passes_with_nothing_overdue_and_fails_each_overdue_item(estate: Workspace) -> None:
    ev = Evidence(estate)
    findings = run_control(GOV_07, ev)
    due_soon = sum(1 for i in workspace_calendar(ev).items if i.status == "due soon")
    assert due_soon == 3  # the CRL, alice's training, the open finding
    until = a_year_after(ev.as_of.date())
    assert [(f.outcome, f.message) for f in findings] == [("pass", f"9 dates on the calendar to {until}, 3 due soon")]
    later = Evidence(estate, as_of=ev.as_of + timedelta(days=21))
    failed = run_control(GOV_07, later)
    assert sorted((f.outcome, f.subject, f.code) for f in failed) == [
        ("fail", "AA-1-F1", "finding-due"),
        ("fail", "crl issuing", "crl-next-update"),
        ("fail", "person alice", "training-expiry"),
    ]
    training = next(f for f in failed if f.code == "training-expiry")
    assert training.message.startswith(f"training expires {_day(ev.as_of, 20)}, now past (Alice ")
    assert training.message.endswith("; RFC 3647 5.3 [S]; people.yaml") and training.severity == "major"


@SOFTWARE
def test_gov07_cannot_decide_without_the_registers(ca_workspace: Workspace) -> None:
    findings = run_control(GOV_07, Evidence(ca_workspace))
    assert sorted((f.outcome, f.subject, f.code) for f in findings) == [
        ("indeterminate", "assessments register", "calendar-gap"),
        ("indeterminate", "documents register", "calendar-gap"),
    ]
