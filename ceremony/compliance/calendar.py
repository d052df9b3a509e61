"""The calendar of what falls due: CA expiries and renewal windows, key rotations and crypto-periods, CRL and ARL
nextUpdates, vetting and training expiries, document reviews, the next annual assessment and open assessment findings.

Each item names the clause or policy parameter its date comes from. The builders are pure functions of typed
records and the as-of time; :func:`workspace_calendar` gathers those records from a workspace's evidence. A source
the workspace does not keep, or that cannot be read, leaves a gap on the calendar (said, never silently skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from ceremony.compliance.sources import Evidence, parse_time
from ceremony.errors import CeremonyError, InputError
from ceremony.model.catalogue import load_catalogue
from ceremony.model.people import Register
from ceremony.model.policy import PolicyParameters
from ceremony.model.profiles import get_profile
from ceremony.model.registers import AssessmentRegister, DocumentRegister
from ceremony.record.crls import CRLRecord, crls
from ceremony.record.symmetric_keys import SymmetricKeyRecord, symmetric_keys

Status = Literal["overdue", "due soon", "later"]

#: What each kind of item is, in words (the table output and the GOV-07 messages).
KINDS = {
    "ca-expiry": "CA certificate expires",
    "ca-renewal": "CA renewal window opens",
    "key-rotation": "key rotation due",
    "key-expiry": "key crypto-period ends",
    "crl-next-update": "CRL nextUpdate",
    "arl-next-update": "ARL nextUpdate",
    "vetting-expiry": "vetting expires",
    "training-expiry": "training expires",
    "document-review": "document review due",
    "assessment-due": "annual assessment due",
    "finding-due": "assessment finding due",
}
#: Key states whose dates still fall due (a deactivated, compromised or destroyed key has none; NIST SP 800-57 5.3).
LIVE_KEY_STATES = ("pre-active", "active", "suspended")


@dataclass(frozen=True)
class CalendarItem:
    """One date that falls due: what, about whom, how it stands as of the calendar's date, and why."""

    date: date
    #: One of :data:`KINDS`.
    kind: str
    #: What it is about, as the control findings name it: "CA s1sp-root", "key s1sp-dmk-1", "person frank".
    subject: str
    status: Status
    #: The clause or policy parameter the date comes from.
    source: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        out = {
            "date": self.date.isoformat(),
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "source": self.source,
        }
        return out | ({"detail": self.detail} if self.detail else {})


@dataclass(frozen=True)
class Gap:
    """A source whose dates are not on the calendar, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class Calendar:
    as_of: datetime
    #: The last day shown (items overdue before it are always shown).
    until: date
    #: Sorted by date, then kind and subject.
    items: tuple[CalendarItem, ...]
    #: What could not be put on the calendar, and why.
    gaps: tuple[Gap, ...] = ()

    @property
    def overdue(self) -> tuple[CalendarItem, ...]:
        return tuple(i for i in self.items if i.status == "overdue")

    def to_json(self, workspace: str) -> dict[str, Any]:
        return {
            "workspace": workspace,
            "as_of": self.as_of.isoformat(),
            "until": self.until.isoformat(),
            "items": [i.to_json() for i in self.items],
            "gaps": [str(g) for g in self.gaps],
        }


@dataclass(frozen=True)
class CaCertificate:
    """A CA of the inventory with what its certificate says (the calendar's view of it)."""

    name: str
    #: root | issuing
    role: str
    not_after: datetime
    #: The CA profile's policy_ref.
    policy_ref: str
    #: A successor took over (a renewal or rollover): its renewal is done, only its expiry is left.
    succeeded: bool = False


@dataclass(frozen=True)
class Dating:
    """How a date stands: as of ``as_of``, within ``soon_days`` is "due soon"."""

    as_of: datetime
    soon_days: int

    def status(self, due: date | datetime, *, opens: bool = False) -> Status:
        """Overdue: a deadline passed (a time before ``as_of``, a date before its date; a date is due all day).
        A window that ``opens`` is never overdue: once open it is due soon (its deadline is another item)."""
        day = due.date() if isinstance(due, datetime) else due
        passed = due < self.as_of if isinstance(due, datetime) else due < self.as_of.date()
        if passed and not opens:
            return "overdue"
        return "due soon" if day <= self.as_of.date() + timedelta(days=self.soon_days) else "later"


# --- the builders (pure) ------------------------------------------------------------------------------
def ca_items(cas: Iterable[CaCertificate], policy: PolicyParameters, dating: Dating) -> list[CalendarItem]:
    """Each CA's certificate expiry (its profile's clause) and the opening of its renewal window."""
    windows = policy.keys.ca_renewal_window_days
    items = []
    for ca in cas:
        subject, after = f"CA {ca.name}", f"notAfter {ca.not_after.isoformat()}"
        expiry = dating.status(ca.not_after)
        items.append(
            CalendarItem(ca.not_after.date(), "ca-expiry", subject, expiry, ca.policy_ref, f"{ca.role} {after}")
        )
        if windows is None or ca.succeeded:
            continue  # an older parameter file (workspace_calendar names the gap), or renewed already
        role = "issuing" if ca.role == "issuing" else "root"
        days: int = getattr(windows, role)
        opens = ca.not_after - timedelta(days=days)
        source = f"policy: keys.ca_renewal_window_days.{role}"
        window = dating.status(opens, opens=True)
        items.append(CalendarItem(opens.date(), "ca-renewal", subject, window, source, f"{days} days before {after}"))
    return items


def key_items(keys: Iterable[SymmetricKeyRecord], clause: str, dating: Dating) -> list[CalendarItem]:
    """Each live symmetric key's rotation date and the end of its crypto-period, as its ceremony set them."""
    items = []
    for key in keys:
        if key.state not in LIVE_KEY_STATES:
            continue
        by = f"ceremony {key.ceremony_id}" if key.ceremony_id else "its import"
        for kind, text, field in (
            ("key-rotation", key.rotation_due, "rotation_days"),
            ("key-expiry", key.expires_at, "crypto_period_days"),
        ):
            due = parse_time(text)
            items.append(
                CalendarItem(
                    due.date(),
                    kind,
                    f"key {key.label}",
                    dating.status(due),
                    f"{clause}; {field} set by {by}",
                    f"{key.purpose} key, {key.state}, due {due.isoformat()}",
                )
            )
    return items


def crl_items(published: Iterable[CRLRecord], dating: Dating, ended: Iterable[str] = ()) -> list[CalendarItem]:
    """The nextUpdate of each CA's latest CRL or ARL (by number): a newer one is due before it; none of a CA in
    ``ended`` (revoked for a compromise: it publishes no more)."""
    latest: dict[tuple[str, str], CRLRecord] = {}
    done = set(ended)
    for crl in published:
        if crl.issuer_ca in done:
            continue
        key = (crl.issuer_ca, crl.kind)
        if key not in latest or crl.number > latest[key].number:
            latest[key] = crl
    items = []
    for (issuer, kind), crl in sorted(latest.items()):
        due = parse_time(crl.next_update)
        parameter = "arl_next_update_days" if kind == "arl" else "crl_next_update_hours"
        items.append(
            CalendarItem(
                due.date(),
                f"{kind}-next-update",
                f"{kind} {issuer}",
                dating.status(due),
                f"policy: revocation.{parameter}",
                f"{kind.upper()} #{crl.number} nextUpdate {due.isoformat()}",
            )
        )
    return items


def people_items(register: Register, clause: str, dating: Dating) -> list[CalendarItem]:
    """Each registered person's vetting and training expiry (none for a person who has left: they hold no seat)."""
    items = []
    for pid, person in register.people.items():
        if person.left is not None and date.fromisoformat(person.left) <= dating.as_of.date():
            continue
        detail = f"{person.name}, {person.organisation} ({', '.join(person.roles)})"
        for kind, until in (("vetting-expiry", person.vetting_expires), ("training-expiry", person.training_expires)):
            day = date.fromisoformat(until)
            items.append(CalendarItem(day, kind, f"person {pid}", dating.status(day), f"{clause}; people.yaml", detail))
    return items


def document_items(register: DocumentRegister, clause: str, dating: Dating) -> list[CalendarItem]:
    """Each in-force document's next review."""
    items = []
    for d in register.documents:
        if d.status == "in-force":
            day = date.fromisoformat(d.next_review)
            items.append(
                CalendarItem(
                    day,
                    "document-review",
                    f"{d.id} {d.version}",
                    dating.status(day),
                    f"{clause}; registers/documents.yaml",
                    f"{d.kind} {d.title}",
                )
            )
    return items


def add_months(day: date, months: int) -> date:
    """``day`` ``months`` calendar months later (the month's last day when it is shorter: 31 Jan + 1 = 28/29 Feb)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def assessment_items(
    register: AssessmentRegister, policy: PolicyParameters, clause: str, dating: Dating
) -> list[CalendarItem]:
    """The next annual assessment (the policy's interval after the last Initial Stage 2 or Annual one), and the due
    date of every open assessment finding."""
    items = []
    done = [a for a in register.assessments if a.type in ("initial-stage-2", "annual")]
    if done:
        last = max(done, key=lambda a: a.date)
        months = policy.compliance.annual_assessment_months
        day = add_months(date.fromisoformat(last.date), months)
        items.append(
            CalendarItem(
                day,
                "assessment-due",
                "annual assessment",
                dating.status(day),
                "policy: compliance.annual_assessment_months",
                f"{months} months after {last.id} ({last.type}) on {last.date}",
            )
        )
    for a in register.assessments:
        for f in a.findings:
            if f.status == "open":
                day = date.fromisoformat(f.due)
                items.append(CalendarItem(day, "finding-due", f.id, dating.status(day), f"{clause}; {a.id}", f.summary))
    return items


def a_year_after(day: date) -> date:
    """The same day a year later (29 February: 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def parse_until(text: str | None, as_of: datetime) -> date:
    """The ``--until`` date (ISO, ``YYYY-MM-DD``), by default a year after ``as_of``; never before ``as_of``'s date.

    Raises:
        InputError: not an ISO date, or before the as-of date.
    """
    if text is None:
        return a_year_after(as_of.date())
    try:
        until = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--until must be an ISO date, YYYY-MM-DD (got {text!r})") from None
    if until < as_of.date():
        raise InputError(f"--until must not be before today, {as_of.date()} (got {text!r})")
    return until


def build_calendar(as_of: datetime, until: date, items: Iterable[CalendarItem], gaps: Sequence[Gap] = ()) -> Calendar:
    """The items up to ``until`` (every overdue item whatever its date), sorted by date, kind and subject."""
    kept = sorted(
        (i for i in items if i.date <= until or i.status == "overdue"), key=lambda i: (i.date, i.kind, i.subject)
    )
    return Calendar(as_of, until, tuple(kept), tuple(gaps))


# --- gathering a workspace's dates -------------------------------------------------------------------
def _cas(ev: Evidence, gaps: list[Gap]) -> list[CaCertificate]:
    inventory = ev.ws.inventory
    found = []
    for name in inventory.ca_names():
        ca = inventory.ca(name)
        certificate = inventory.certificate(ca.issuer_ca or ca.name, ca.serial)
        if certificate is None:
            gaps.append(Gap(f"CA {name}", "its certificate is not in the inventory"))
            continue
        # The CA's key as its valid certificates certify it now: a rollover supersedes the first one and
        # re-certifies the key under the new root; a CA whose key nothing certifies any more falls due no more.
        valid = [c for c in inventory.valid_certificates_of_key(certificate.ski) if c.profile == certificate.profile]
        if not valid:
            continue
        try:
            clause = get_profile(ca.profile).rules.policy_ref
        except CeremonyError:
            clause = f"profile {ca.profile} (not among the profiles)"
        latest = max(parse_time(c.not_after) for c in valid)
        found.append(CaCertificate(name, ca.role, latest, clause, inventory.succession(name) is not None))
    return found


def workspace_calendar(ev: Evidence, until: date | None = None) -> Calendar:
    """Everything that falls due in the evidence's workspace, as of ``ev.as_of``, up to ``until`` (default: a year
    later). A register the workspace does not keep, or cannot read, is a gap, and the rest is still dated."""
    as_of = ev.as_of
    dating = Dating(as_of, ev.policy.compliance.calendar_due_soon_days or 0)
    clauses = {c.id: c.policy_ref for c in load_catalogue().controls}
    gaps: list[Gap] = []
    if ev.policy.keys.ca_renewal_window_days is None:
        gaps.append(Gap("CA renewal windows", "the policy parameters name no keys.ca_renewal_window_days"))
    items = ca_items(_cas(ev, gaps), ev.policy, dating)
    items += key_items(symmetric_keys(ev.ws.inventory), f"KEY-07: {clauses['KEY-07']}", dating)
    items += crl_items(crls(ev.ws.inventory), dating, ev.compromised_cas)
    readers: tuple[tuple[str, Callable[[], list[CalendarItem]]], ...] = (
        ("participant register", lambda: people_items(ev.register, clauses["PER-01"], dating)),
        ("documents register", lambda: document_items(ev.registers["documents"], clauses["GOV-01"], dating)),
        (
            "assessments register",
            lambda: assessment_items(ev.registers["assessments"], ev.policy, clauses["GOV-03"], dating),
        ),
    )
    for what, read in readers:
        try:
            items += read()
        except CeremonyError as exc:  # missing (MissingRegister) or malformed (ConfigError): the rest is dated
            gaps.append(Gap(what, exc.message))
    return build_calendar(as_of, until or a_year_after(as_of.date()), items, gaps)
