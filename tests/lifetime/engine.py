"""A PKI's lifetime, simulated: one workspace run through years of ceremonies and daily work on a pinned clock.

The engine plays the people of a live PKI on a test workspace (the only kind that honours a pinned clock):
every key ceremony in order, each rehearsed first in the rehearsal area; daily work opened by two custodians'
PIN shares (no PIN, share or component ever rests in the workspace); monthly device batches with re-keys and
rejected rows; CRLs a day before the current one's nextUpdate and within hours of every revocation; the ARL
on the policy's interval; revocations with every policy reason, each by two people; symmetric-key rotations
when due; register changes put on record; incidents; a custodian leaving; and, each year, an evidence pack
signed by the compliance officer with the key on their own token and compared with the previous one.

After every step it asserts what must hold (:meth:`Lifetime.check`): the step's own outcome, nothing at rest
that must not be, and neither a FATAL finding nor an unwaived failure among the controls a step can break
(:data:`RECORDS_AGREE`: journal, inventory, artifacts, CRLs, transcripts, secrets at rest); the whole catalogue
runs on each month's first work day and in every pack. Each year's assessment is summarised as findings
without serials or other random values (:func:`finding_key`), which tests/lifetime/golden/ compares with what
is expected.

Randomness is one seeded :class:`random.Random` (which devices, which rows are rejected, which certificate
is revoked); keys, serials and shares stay truly random, and the summary leaves them out.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import yaml

from ceremony import procedures
from ceremony.clock import PIN_VARIABLE, PinnedClock
from ceremony.compliance.assessment import apply_waivers, run_checks, run_control
from ceremony.compliance.sources import Evidence
from ceremony.issue.batch import issue_batch
from ceremony.issue.crl import publish_crl
from ceremony.issue.revocation import revoke
from ceremony.issue.single import issue
from ceremony.keys.personal import PIN_ENV as PERSON_PIN_ENV
from ceremony.keys.personal import TokenKey, token_ref
from ceremony.keys.pkcs11 import find_softhsm_module, init_softhsm_token
from ceremony.model.catalogue import load_catalogue
from ceremony.model.ceremony_file import load_ceremony, record_approval
from ceremony.model.people import load_register
from ceremony.model.profiles import get_profile
from ceremony.model.tbs import Identity, subject_name
from ceremony.procedures import activation
from ceremony.procedures.attestation import enrol_person, participants, sign_transcript
from ceremony.record.registers import record_registers
from ceremony.record.transcript import read_entries
from ceremony.record.workspace import PASSPHRASE_ENV, PIN_ENV, Workspace, init_workspace
from ceremony.reporting.evidence import build_pack
from tests.support.ceremony_files import CEREMONIES, DATA, device_list
from tests.support.custodians import Custodians
from tests.support.processes import in_child

START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
TOKEN = "s1sp-ca-token"  # noqa: S105 - a label, as in data/ceremonies/
ROOT, ISSUING = "s1sp-root", "s1sp-issuing"
DEVICE_PROFILE, ORG_PROFILE = "ss1sp-device", "ss1sp-organisation"
ORG_EUI64, ORG_ROLE, ORG_NAME = "90B3D51F30000001", "02", "S1SPSIM"
OWN_TOKEN_PIN = "sim-own-token-4410"  # noqa: S105 - test-only PIN of each person's own token
OWN_SO_PIN = "sim-own-so-7702"  # noqa: S105 - test-only
#: The controls whose failure means the records disagree or a secret rests where it must not: never allowed.
RECORDS_AGREE = (
    "LOG-01",
    "LOG-03",
    "LOG-04",
    "LOG-05",
    "CER-02",
    "REV-01",
    "REV-02",
    "REV-03",
    "REV-04",
    "KEY-09",
    "GOV-06",
)
#: Day-one ceremonies, in order, each on the date its example file names.
DAY_ONE = (
    ("token-init", 0),
    ("root-ca", 0),
    ("issuing-ca", 0),
    ("key-backup", 0),
    ("key-restore", 1),
    ("key-destruction", 2),
    ("symmetric-key", 3),
)
#: The policy's revocation reasons, each used on a device certificate over the years (two people each).
REASONS = ("keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "cACompromise")
#: A new CRL the day before the current one's nextUpdate (RFC 5280 5.1.2.5: a CRL is issued before nextUpdate).
CRL_LEAD = timedelta(days=1)
#: Symmetric keys rotated when due: label -> (crypto-period, rotation) days, as data/ceremonies/symmetric-key.yaml.
ROTATED = {"s1sp-tkek-1": (1095, 730), "s1sp-dmk-1": (365, 300), "s1sp-dmk-2": (365, 300)}
BREAK_AT = datetime(2027, 1, 1, tzinfo=timezone.utc)
#: The organisation's certificates (1826 days from 2026-12-04) are renewed a month before they expire.
ORG_RENEWAL = date(2031, 11, 1)
#: A custodian of the backup KEK leaves in the third year; a fortnight later the root key's backup is re-wrapped
#: under a new backup key without him (backup-rewrap), and the restore test token's PINs changed without him.
LEAVER, LEAVER_DAY = "frank", date(2029, 6, 15)
REWRAP_DAY, REWRAP_TOKEN = date(2029, 7, 2), "s1sp-rewrap-token"  # noqa: S105 - a label
#: Issue M's ceremonies of a PKI's life, each on its day (rehearsed first, approved by two, as every ceremony):
#: the CA token's PINs changed by its custodians; a custodian change of the token's PINs (erin hands her custody
#: to grace); the issuing CA renewed with a new key (generation 2, a 30-day overlap); the first generation's key
#: reported compromised and its certificate revoked on the ARL, its devices re-certified under generation 2; and
#: a root rollover with link certificates both ways, generation 2 of the issuing CA re-certified under the new
#: root, the new root key backed up, restore-tested and the test copy destroyed.
PIN_CHANGE_DAY = date(2027, 5, 3)
CUSTODIAN_CHANGE_DAY, CUSTODY_FROM, CUSTODY_TO = date(2028, 3, 6), "erin", "grace"
RENEWAL_DAY, ISSUING_G2 = date(2029, 3, 5), "s1sp-issuing-g2"
COMPROMISE_DAY = date(2030, 2, 4)
ROLLOVER_DAY, ROOT_G2 = date(2031, 5, 5), "s1sp-root-g2"
RESTORE_TOKEN_G2 = "s1sp-restore-token-2"  # noqa: S105 - a label


class SimulationFailure(AssertionError):
    """A step broke something that must hold; the message names the step, the control and the finding."""


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str
    subject: str

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.subject}"


@dataclass
class Assessment:
    date: str
    verdict: str
    fatal: int
    findings: list[str]
    counts: dict[str, int]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "verdict": self.verdict,
            "fatal": self.fatal,
            "findings": self.findings,
            "counts": self.counts,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Device:
    eui64: str
    serials: dict[str, str] = field(default_factory=dict)  # usage -> the valid certificate's serial
    retired: bool = False
    #: The issuing CA of those certificates.
    ca: str = ISSUING


_RANDOM = re.compile(r"\b[0-9A-Fa-f]{16,}\b")


def finding_key(f: Any) -> str:
    """``CONTROL outcome code subject`` with serials, fingerprints and hashes replaced by ``*``: stable across runs."""
    waived = " waived" if f.waived else ""
    return f"{f.control} {f.outcome}{waived} {f.code} {_RANDOM.sub('*', f.subject)}".rstrip()


def violations(findings: list[Any]) -> list[str]:
    """What must never be found: a FATAL finding (a check that crashed), or records that disagree or a secret at
    rest (a failure, not waived, of a RECORDS_AGREE control); each as ``CONTROL outcome (code) subject: message``."""
    return [
        f"{f.control} {f.outcome} ({f.code}) {f.subject}: {f.message}"
        for f in findings
        if f.outcome == "fatal" or (f.control in RECORDS_AGREE and f.outcome == "fail" and not f.waived)
    ]


def clock_at(at: datetime) -> None:
    """Pin the simulation's clock at ``at`` (for this process and every child it starts)."""
    os.environ[PIN_VARIABLE] = PinnedClock(at, time.time()).to_environment()


class Lifetime:
    """One workspace through ``years`` years. ``breaks`` names one thing done wrong on purpose (see BREAKS)."""

    def __init__(
        self,
        base: Path,
        *,
        years: int,
        seed: int = 1,
        devices_per_month: int = 1,
        breaks: str | None = None,
        check_every_step: bool = True,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if find_softhsm_module() is None:
            raise RuntimeError("the lifetime simulation needs SoftHSM2 (apt-get install softhsm2)")
        if breaks is not None and breaks not in BREAKS:
            raise ValueError(f"--break must be one of {', '.join(BREAKS)} (got {breaks!r})")
        self.base, self.years, self.breaks = base, years, breaks
        self.random = random.Random(seed)
        self.devices_per_month = devices_per_month
        self.check_every_step = check_every_step
        self.say = say or (lambda _text: None)
        self.root = base / "workspace"
        self.files = base / "ceremony-files"
        self.requests = base / "requests"
        self.people = People()  # what the custodians carry away on paper, in memory only
        self.rehearsal_people = People()  # the rehearsal area's cards are the rehearsal's own
        self.keys: dict[str, TokenKey] = {}
        self.devices: list[Device] = []
        self.org: dict[str, str] = {}
        self.pending_revocations: list[tuple[str, str, str]] = []  # (CA, serial, reason) for the next work day
        self.steps = 0
        self.step: Step | None = None
        self.assessments: list[Assessment] = []
        self.year_seconds: list[float] = []
        self.custodians = ["carol", "dave", "erin"]
        self.last_crl: dict[str, datetime] = {}
        self.ceremonies_run: list[str] = []
        self.catalogue = load_catalogue()
        self._next_device = 1
        self.checked_month = (START.year, START.month)
        #: symmetric key label -> the day its rotation falls due (its successor's label ends -g<generation>)
        self.rotations: dict[str, date] = {k: START.date() + timedelta(days=3 + v[1]) for k, v in ROTATED.items()}
        self.generations: dict[str, int] = {}
        self.left: list[str] = []
        #: The issuing CA new certificates come from, the issuing CAs that publish CRLs, the roots that publish ARLs.
        self.issuing = ISSUING
        self.crl_cas = [ISSUING]
        self.roots = [ROOT]
        self.org_ca = ISSUING

    # --- the calendar ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        for name in (PIN_ENV, PASSPHRASE_ENV, "SOFTHSM2_CONF"):
            os.environ.pop(name, None)  # a live-style workspace opens its token only from custodians' shares
        self.base.mkdir(parents=True, exist_ok=True)
        year_started = time.perf_counter()
        self.day_one()
        end = START.replace(year=START.year + self.years)
        day = START.date() + timedelta(days=4)
        year = 1
        while datetime(day.year, day.month, day.day, tzinfo=timezone.utc) < end:
            self.workday(day)
            anniversary = date(START.year + year, START.month, START.day)
            if day + timedelta(days=1) == anniversary:
                self.assess(year)
                self.year_seconds.append(time.perf_counter() - year_started)
                year_started = time.perf_counter()
                year += 1
            day += timedelta(days=1)
        return {
            "years": self.years,
            "steps": self.steps,
            "devices": len(self.devices),
            "assessments": [a.to_json() for a in self.assessments],
            "year_seconds": [round(s, 1) for s in self.year_seconds],
            "runtime_seconds": round(time.perf_counter() - started, 1),
        }

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)

    @contextmanager
    def doing(self, at: datetime, kind: str, subject: str, *, check: bool = True, pin: bool = True) -> Iterator[None]:
        """One step: the clock pinned at ``at`` (or, with ``pin`` False, left running from the day's pin, which
        the activation session shares); afterwards what must hold is checked (unless ``check`` is False)."""
        self.step = Step(at, kind, subject)
        if pin:
            clock_at(at)
        try:
            yield
        except SimulationFailure:
            raise
        except Exception as exc:
            raise SimulationFailure(f"step {self.step}: {type(exc).__name__}: {exc}") from exc
        self.steps += 1
        if check and self.check_every_step:
            self.check(self.findings(RECORDS_AGREE))

    @contextmanager
    def opened(self) -> Iterator[Workspace]:
        """The workspace, open for one step's work and closed after it."""
        ws = Workspace.open(self.root)
        try:
            yield ws
        finally:
            ws.close()

    # --- day one ----------------------------------------------------------------------------------------
    def day_one(self) -> None:
        with self.doing(START - timedelta(hours=1), "setup", "workspace, registers, own tokens", check=False):
            init_workspace(self.root, key_store="pkcs11", token_label=TOKEN, initialise_token=False, purpose="test")
            self.write_registers(START.date())
            self.enrol_everyone()
            self.record("the simulated PKI's registers: people, documents, assessments, HSMs, incidents, waivers")
        for kind, offset in DAY_ONE:
            self.ceremony(kind, START + timedelta(days=offset, hours=len(self.ceremonies_run)))
        with self.doing(START + timedelta(days=3, hours=12), "activate", "the first day's work"):
            self.activate()
        noon = START + timedelta(days=3, hours=12)
        with self.doing(noon, "issue", "organisation certificates", pin=False):
            self.issue_organisation()
        with self.doing(noon, "crl", ISSUING, pin=False):
            self.crl(ISSUING)
        with self.doing(noon, "arl", ROOT, pin=False):
            self.crl(ROOT)
        with self.doing(noon, "deactivate", "end of day", pin=False):
            self.deactivate()

    def write_registers(self, today: date) -> None:
        """The simulated PKI's registers, dated from ``today``: everyone vetted and trained for the year ahead,
        documents reviewed, the last annual assessment, an HSM inventory, incidents and waivers as they stand."""
        people = yaml.safe_load((DATA / "people.yaml").read_text(encoding="utf-8"))
        ahead = (today + timedelta(days=400)).isoformat()
        register = self.root / "people.yaml"
        if register.exists():
            people = yaml.safe_load(register.read_text(encoding="utf-8"))
        for pid, person in people["people"].items():
            if pid not in self.left:
                person["vetting_expires"] = person["training_expires"] = ahead
        register.write_text(yaml.safe_dump(people, sort_keys=False), encoding="utf-8")
        folder = self.root / "registers"
        folder.mkdir(exist_ok=True)
        documents = yaml.safe_load((DATA / "registers" / "documents.yaml").read_text(encoding="utf-8"))
        for document in documents["documents"]:
            document["next_review"] = ahead
        (folder / "documents.yaml").write_text(yaml.safe_dump(documents, sort_keys=False), encoding="utf-8")
        if not (folder / "assessments.yaml").exists():
            assessments = yaml.safe_load((DATA / "registers" / "assessments.yaml").read_text(encoding="utf-8"))
            (folder / "assessments.yaml").write_text(yaml.safe_dump(assessments, sort_keys=False), encoding="utf-8")
        if not (folder / "hsms.yaml").exists():
            (folder / "hsms.yaml").write_text(HSMS, encoding="utf-8")
        (folder / "waivers.yaml").write_text(waivers(today), encoding="utf-8")
        if not (folder / "incidents.yaml").exists():
            (folder / "incidents.yaml").write_text("schema_version: 1\nincidents: []\n", encoding="utf-8")

    def record(self, reason: str, by: str = "alice") -> None:
        with self.opened() as ws:
            record_registers(ws, by=by, reason=reason)

    def enrol_everyone(self) -> None:
        """Each person's attestation key on a SoftHSM2 token of their own (outside the workspace)."""
        module = find_softhsm_module()
        assert module is not None
        people = yaml.safe_load((self.root / "people.yaml").read_text(encoding="utf-8"))["people"]
        for pid in people:
            where = self.base / "own-tokens" / pid
            in_child(init_softhsm_token, where / "tokens", where / "softhsm2.conf", f"{pid}-card", OWN_SO_PIN,
                     OWN_TOKEN_PIN)  # fmt: skip
            ref = token_ref(f"{pid}-card", module, where / "softhsm2.conf")
            enrol_person(self.root / "people.yaml", pid, ref, OWN_TOKEN_PIN, now=START)
            self.keys[pid] = TokenKey.open(ref, OWN_TOKEN_PIN)

    # --- ceremonies -------------------------------------------------------------------------------------
    def ceremony_file(self, kind: str, when: datetime, change: dict[str, Any] | None = None) -> Path:
        """The example file of ``kind``, dated ``when`` (a later ceremony gets an id of its own)."""
        data = yaml.safe_load((CEREMONIES / f"{kind}.yaml").read_text())
        if when.date() != date.fromisoformat(data["date"]):
            data["date"] = when.date().isoformat()
            data["ceremony_id"] = f"{re.sub(r'-[0-9]{4}-[0-9]{2}$', '', data['ceremony_id'])}-{when:%Y-%m}"
            data["recording"] = {"video_id": f"VID-{when:%Y-%m-%d}-{kind}"}
        seats = data.get("participants", {})
        if seats.get("custodians") == ["carol", "dave", "erin"] and self.custodians != seats["custodians"]:
            # A ceremony on the CA token seats its PIN's custodians as they are now (after a custodian change).
            seats["custodians"] = list(self.custodians)
            data["bags"]["share_cards"] = {c: f"TEB-{data['date'][:4]}{i:02d}" for i, c in enumerate(self.custodians)}
        for dotted, value in (change or {}).items():
            *parents, last = dotted.split(".")
            node = data
            for part in parents:
                node = node[part]
            node[last] = value
        self.files.mkdir(parents=True, exist_ok=True)
        path = self.files / f"{data['ceremony_id']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def ceremony(
        self, kind: str, when: datetime, change: dict[str, Any] | None = None, *, ceremony_id: str | None = None
    ) -> None:
        """Rehearse, approve (two approvers), run live with the custodians at the console, attest."""
        path = self.ceremony_file(
            kind, when, {**(change or {}), **({"ceremony_id": ceremony_id} if ceremony_id else {})}
        )
        with self.doing(when, "rehearsal", kind, check=False):
            # The rehearsal area's token is another SoftHSM2 configuration: used from a process of its own.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                held = pool.submit(_rehearse, path, self.root, self.rehearsal_people.shares,
                                   self.rehearsal_people.components).result()  # fmt: skip
            self.rehearsal_people.shares, self.rehearsal_people.components = held
        with self.doing(when + timedelta(minutes=30), "approve", path.name, check=False):
            with self.opened() as ws:
                register = load_register(self.root / "people.yaml")
                for by in ("alice", "victor"):
                    record_approval(ws.journal, load_ceremony(path), by, register)
        with self.doing(when + timedelta(minutes=40), "ceremony", kind):
            outcome = procedures.run(path, self.root, console=self.people)
            self.attest(outcome.transcript)
            self.ceremonies_run.append(kind)

    def attest(self, transcript: Path) -> None:
        register = load_register(self.root / "people.yaml")
        for pid in participants(read_entries(transcript)[0]):
            sign_transcript(transcript, pid, self.keys[pid], register)

    # --- daily work -------------------------------------------------------------------------------------
    def activate(self) -> None:
        with self.opened() as ws:
            self.people.on_duty = self.custodians[:2]
            try:
                activation.activate(ws, self.people, minutes=120)
            finally:
                self.people.on_duty = []

    def deactivate(self) -> None:
        with self.opened() as ws:
            if not activation.end(ws):
                raise SimulationFailure(f"step {self.step}: no activation session was running")

    def crl(self, ca: str) -> None:
        if self.breaks == "skip-crl" and ca == ISSUING and self.step and self.step.at >= BREAK_AT:
            return  # broken on purpose: from BREAK_AT on, the operator forgets the issuing CA's CRLs
        with self.opened() as ws:
            published = publish_crl(ws, ca, by="bob")
            self.last_crl[ca] = published.this_update
            if not published.path.is_file():
                raise SimulationFailure(f"step {self.step}: CRL {published.number} of {ca} has no file")

    def issue_organisation(self) -> None:
        with self.opened() as ws:
            profile = get_profile(ORG_PROFILE, ws.config.oids)
            for usage in ("ds", "ka"):
                identity = Identity(eui64=ORG_EUI64, usage=usage, role=ORG_ROLE, name=ORG_NAME)
                csr = _csr(subject_name(profile, identity))
                issued = issue(ws, ca_name=self.issuing, profile_name=ORG_PROFILE, csr=csr,
                               csr_source=f"sim:org-{usage}", identity=identity, approved_by="bob")  # fmt: skip
                self.org[usage] = issued.record.serial
        self.org_ca = self.issuing

    def renew_organisation(self) -> None:
        """New organisation certificates before the old expire (profile: 1826 days). Single issuance keeps one valid
        certificate per identity, so the old are revoked (superseded, two people) and the new issued at once."""
        with self.opened() as ws:
            for serial in self.org.values():
                revoke(ws, ca_name=self.org_ca, serial=serial, reason="superseded", requested_by="bob",
                       approved_by="alice")  # fmt: skip
        self.issue_organisation()

    def batch(self, day: date, *, rekey: bool, devices: list[Device] | None = None) -> None:
        """This month's device list: new devices (or re-keys of some in service), sometimes with a bad row; or the
        re-certification of ``devices`` under the current issuing CA."""
        folder = self.requests / f"{day:%Y-%m}-{'rekey' if rekey else 'new'}{'-recertify' if devices else ''}"
        if devices:
            chosen = devices
        elif rekey:
            chosen = self.random.sample([d for d in self.devices if not d.retired], 1)
        else:
            first = 0x00DB123400000000 + self._next_device
            chosen = [Device(f"{first + n:016X}") for n in range(self.devices_per_month)]
        folder.mkdir(parents=True)
        path = folder / "devices.csv"
        rows = ["eui64,usage,csr"]
        written = device_list(folder / "csr-source", len(chosen), first=self._next_device)
        source_rows = written.read_text().splitlines()[1:]
        for device, (ds, ka) in zip(chosen, zip(source_rows[::2], source_rows[1::2], strict=True), strict=True):
            for line in (ds, ka):
                _eui, usage, csr = line.split(",")
                rows.append(f"{device.eui64},{usage},csr-source/{csr}")
        bad = not devices and self.random.random() < 0.25
        if bad:  # a row whose CSR is not one: rejected, the rest issued
            (folder / "broken.der").write_bytes(b"\x30\x03\x02\x01\x00")
            rows.append(f"{0x00DB12340000FFFF - self._next_device:016X},ds,broken.der")
        path.write_text("\n".join(rows) + "\n")
        if not rekey:
            self._next_device += len(chosen)
        # One valid certificate per identity and issuing-CA key (issue J): a device's first certificate from another
        # CA (a new generation) is no re-key there.
        rekey = rekey and all(d.ca == self.issuing for d in chosen)
        with self.opened() as ws:
            result = issue_batch(ws, ca_name=self.issuing, profile_name=DEVICE_PROFILE, devices=path,
                                 approved_by="bob", rekey=rekey, skip_rejected=folder / "rejects.csv" if bad else None,
                                 progress=False, say=lambda _t: None)  # fmt: skip
            expected = 2 * len(chosen)
            if result.issued_now != expected or len(result.rejected) != int(bad):
                raise SimulationFailure(
                    f"step {self.step}: the batch issued {result.issued_now} of {expected} and rejected "
                    f"{len(result.rejected)} of {int(bad)}"
                )
            serials = self.batch_serials(ws, result.batch_id)
        for device in chosen:
            old, old_ca = dict(device.serials), device.ca
            device.serials, device.ca = serials[device.eui64], self.issuing
            if devices:
                continue  # re-certified: its old CA is revoked, which invalidates everything under it
            if old:
                self.pending_revocations += [(old_ca, serial, "superseded") for serial in old.values()]
            else:
                self.devices.append(device)

    def batch_serials(self, ws: Workspace, batch_id: str) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for record in ws.inventory.certificates_of_batch(batch_id):
            assert record.eui64 is not None and record.usage is not None
            found.setdefault(record.eui64, {})[record.usage] = record.serial
        return found

    def revoke_pending(self) -> None:
        with self.opened() as ws:
            for ca, serial, reason in self.pending_revocations:
                revoke(ws, ca_name=ca, serial=serial, reason=reason, requested_by="bob", approved_by="alice")
        self.pending_revocations = []

    def workday(self, day: date) -> None:
        """What falls due on ``day``, done in one activation of the token (if anything needs it)."""
        tasks: list[tuple[str, str, Callable[[], None]]] = []
        if day.day == 10:
            tasks.append(("batch", f"devices {day:%Y-%m}", lambda: self.batch(day, rekey=False)))
        if day.day == 20 and day.month % 3 == 0 and len(self.devices) > 2:
            tasks.append(("rekey", f"devices {day:%Y-%m}", lambda: self.batch(day, rekey=True)))
        if day.day == 25 and day.month in (2, 5, 8, 11) and len(self.devices) > 3:
            tasks.append(("revoke", "a device", lambda: self.retire_device(day)))
        if day == ORG_RENEWAL:
            tasks.append(("renew", "organisation certificates", self.renew_organisation))
        if self.pending_revocations and day.day == 21:
            tasks.append(("revoke", f"{len(self.pending_revocations)} superseded", self.revoke_pending))
        revoked_today = any(kind in ("revoke", "renew") for kind, _, _ in tasks)
        for ca in self.crl_cas:
            crl_due = self.last_crl.get(ca, START) + timedelta(hours=168) - CRL_LEAD
            if revoked_today or self.at(day, 23) >= crl_due:
                tasks.append(("crl", ca, lambda ca=ca: self.crl(ca)))  # type: ignore[misc]
        for root in self.roots:
            arl_due = self.last_crl.get(root, START) + timedelta(days=365) - timedelta(days=30)
            if self.at(day, 23) >= arl_due:
                tasks.append(("arl", root, lambda root=root: self.crl(root)))  # type: ignore[misc]
        if tasks:
            hour = 10
            # The activation's own journal entries are checked with the day's first task.
            with self.doing(self.at(day, hour), "activate", f"{len(tasks)} tasks", check=False):
                self.activate()
            for kind, subject, task in tasks:
                with self.doing(self.at(day, hour), kind, subject, pin=False):
                    task()
            with self.doing(self.at(day, hour), "deactivate", "end of day", pin=False):
                self.deactivate()
            if self.checked_month != (day.year, day.month):
                self.check()  # the whole catalogue on each month's first work day
                self.checked_month = (day.year, day.month)
        self.governance(day)

    def retire_device(self, day: date) -> None:
        """A device certificate revoked for one of the policy's reasons, in turn, by two people."""
        device = self.random.choice([d for d in self.devices if not d.retired and d.serials])
        reason = REASONS[len([d for d in self.devices if d.retired]) % len(REASONS)]
        with self.opened() as ws:
            revoke(ws, ca_name=device.ca, eui64=device.eui64, reason=reason, requested_by="bob", approved_by="alice")
        device.retired = True

    def governance(self, day: date) -> None:
        """Register changes on their dates: annual renewals, incidents, a custodian leaving."""
        if day.month == 11 and day.day == 15:
            with self.doing(self.at(day, 14), "register", "annual vetting, training and document reviews"):
                self.write_registers(day)
                self.record(f"annual renewals {day.year}")
        for n, label in enumerate(sorted(label for label, due in self.rotations.items() if due == day)):
            self.rotate(label, day, hour=11 + n)  # two falling due together: one after the other
        if day == LEAVER_DAY:
            with self.doing(self.at(day, 15), "register", f"{LEAVER} leaves"):
                self.leave(LEAVER)
        self.life(day)
        if day.month == 9 and day.day == 1:
            with self.doing(self.at(day, 16), "register", f"annual assessment {day.year}"):
                self.annual_assessment(day)
        if day.month == 6 and day.day == 2:
            with self.doing(self.at(day, 16), "incident", f"INC-{day.year}"):
                self.incident(day)

    def rotate(self, label: str, day: date, *, hour: int = 11) -> None:
        """A key-rotation ceremony for ``label`` on its rotation date: its successor takes over."""
        generation = self.generations.get(label, 1) + 1
        base = label.rsplit("-g", 1)[0]
        successor = f"{base}-g{generation}"
        change = {"key_label": label, "successor_label": successor, "crypto_period_days": ROTATED[base][0],
                  "rotation_days": ROTATED[base][1]}  # fmt: skip
        self.ceremony("key-rotation", self.at(day, hour), change, ceremony_id=f"key-rotation-{successor}")
        del self.rotations[label]
        self.generations[successor] = generation
        self.rotations[successor] = day + timedelta(days=ROTATED[base][1])

    def leave(self, person: str) -> None:
        """``person`` leaves the PKI: the register says so (``left``), and their vetting and training end today and are
        never renewed. Their shares of the backup key's split and of the restore token's PIN stay out: KEY-10 reports
        them until those secrets are re-split without them."""
        path = self.root / "people.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        today = self.step.at.date().isoformat() if self.step else None
        data["people"][person]["vetting_expires"] = data["people"][person]["training_expires"] = today
        data["people"][person]["left"] = today
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.left.append(person)
        self.record(f"{person} leaves")

    # --- issue M: the ceremonies of a PKI's life --------------------------------------------------------------
    def life(self, day: date) -> None:
        """The PIN change, the custodian change, the renewal, the compromise and the rollover, on their days."""
        if day == PIN_CHANGE_DAY:
            self.ceremony("pin-change", self.at(day, 11))
        elif day == CUSTODIAN_CHANGE_DAY:
            seated = [c if c != CUSTODY_FROM else CUSTODY_TO for c in self.custodians]
            bags = {c: f"TEB-{day.year}2{i}" for i, c in enumerate(seated)}
            self.ceremony("pin-change", self.at(day, 11), {
                "participants.custodians": seated, "leaving": [CUSTODY_FROM], "bags.share_cards": bags,
                "reason": f"custodian change: {CUSTODY_FROM} hands the CA token's custody to {CUSTODY_TO}",
            }, ceremony_id=f"custodian-change-{day:%Y-%m}")  # fmt: skip
            self.custodians = seated
            for people in (self.people, self.rehearsal_people):  # the rehearsal area's token changed hands too
                for purpose in (f"{TOKEN}.user-pin", f"{TOKEN}.so-pin"):
                    people.shares.get(purpose, {}).pop(CUSTODY_FROM, None)  # not handed back: they open nothing
        elif day == RENEWAL_DAY:
            self.ceremony("issuing-ca-renewal", self.at(day, 11))
            self.issuing = ISSUING_G2
            self.crl_cas.append(ISSUING_G2)
            with self.doing(self.at(day, 12), "activate", "the new generation's first CRL", check=False):
                self.activate()
            with self.doing(self.at(day, 12), "crl", ISSUING_G2, pin=False):
                self.crl(ISSUING_G2)
            with self.doing(self.at(day, 12), "deactivate", "end of day", pin=False):
                self.deactivate()
        elif day == COMPROMISE_DAY:
            self.compromise(day)
        elif day == ROLLOVER_DAY:
            self.rollover(day)
        elif 1 <= (day - ROLLOVER_DAY).days <= 3:
            self.new_root_backup(day)
        elif day == REWRAP_DAY:
            self.without_leaver(day)

    def without_leaver(self, day: date) -> None:
        """The secrets the leaver held a share of, rotated without him: the root key's backup re-wrapped under a
        new backup key (the old blob and cards retired), and the restore test token's PINs changed."""
        kek = [c for c in ("carol", "dave", "erin", "frank", "grace") if c not in self.left]
        bags = {c: f"TEB-{day.year}4{i}" for i, c in enumerate(kek)}
        seats = {"participants.custodians": kek, "quorum": {"m": 3, "n": len(kek)}, "bags.share_cards": bags,
                 "leaving": [LEAVER]}  # fmt: skip
        self.ceremony("backup-rewrap", self.at(day, 14), {
            **seats, "bags.tokens": {REWRAP_TOKEN: f"TEB-{day.year}49"},
            "reason": f"custodian change: {LEAVER} left on {LEAVER_DAY}; the root key's backup key is rotated",
        }, ceremony_id=f"backup-rewrap-root-{day:%Y-%m}")  # fmt: skip
        self.ceremony("pin-change", self.at(day, 16), {
            **seats, "token.label": "s1sp-restore-token", "pins": ["user", "so"],
            "reason": f"custodian change: {LEAVER} left on {LEAVER_DAY}; the restore test token's PINs are changed",
        }, ceremony_id=f"custodian-change-restore-token-{day:%Y-%m}")  # fmt: skip

    def compromise(self, day: date) -> None:
        """The first issuing generation's key is reported compromised: the incident on the register, the CA's
        certificate revoked on the root's ARL in a ca-revocation ceremony (two people), its devices re-certified
        under generation 2 from their recorded CSRs (the ceremony's plan) and the organisation's certificates
        issued again there. The revoked CA publishes no more CRLs (REV-01: its key would sign nothing trustworthy)."""
        incident = f"INC-{day.year}-CA1"
        with self.doing(self.at(day, 12), "incident", incident):  # after the day's work (at 10)
            path = self.root / "registers" / "incidents.yaml"
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            data["incidents"].append({
                "id": incident, "kind": "key-compromise", "ca": ISSUING,
                "summary": f"{ISSUING}'s key reported compromised by the HSM vendor's advisory",
                "detected_at": self.at(day, 11, 30).isoformat(), "pma_notified_at": self.at(day, 11, 50).isoformat(),
            })  # fmt: skip
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            self.record(f"incident {incident}")
        self.ceremony("ca-revocation", self.at(day, 12, 10), {"incident": incident, "ca": ISSUING, "issuer": ROOT,
                                                          "outputs": {}})  # fmt: skip
        self.crl_cas.remove(ISSUING)
        self.last_crl[ROOT] = self.at(day, 12, 50)  # the ceremony published the ARL
        self.pending_revocations = [p for p in self.pending_revocations if p[0] != ISSUING]  # the ARL covers them
        affected = [d for d in self.devices if d.ca == ISSUING and not d.retired]
        with self.doing(self.at(day, 14), "activate", "re-certification", check=False):
            self.activate()
        if affected:
            with self.doing(self.at(day, 14), "recertify", f"{len(affected)} devices from their recorded CSRs",
                            pin=False):  # fmt: skip
                self.recertify(day, affected)
        if self.org_ca == ISSUING:
            with self.doing(self.at(day, 14), "issue", "organisation certificates again", pin=False):
                self.issue_organisation()
        with self.doing(self.at(day, 14), "crl", ISSUING_G2, pin=False):
            self.crl(ISSUING_G2)
        with self.doing(self.at(day, 14), "deactivate", "end of day", pin=False):
            self.deactivate()
        for device in self.devices:
            if device.ca == ISSUING:
                device.retired = True  # retired before the compromise: nothing left to re-certify

    def recertify(self, day: date, affected: list[Device]) -> None:
        """The compromised CA's devices re-certified under generation 2 from the ca-revocation ceremony's plan:
        each device's recorded CSR (its proof of possession, verified again) with the identity the plan names,
        approved as any batch is; the same key, a new certificate."""
        plan = self.root / "artifacts" / "compromise" / f"ca-revocation-{day:%Y-%m}" / "recertification-devices.csv"
        with self.opened() as ws:
            result = issue_batch(ws, ca_name=self.issuing, profile_name=DEVICE_PROFILE, devices=plan,
                                 approved_by="bob", progress=False, say=lambda _t: None)  # fmt: skip
            if result.issued_now != 2 * len(affected) or result.rejected:
                raise SimulationFailure(
                    f"step {self.step}: the re-certification issued {result.issued_now} of {2 * len(affected)} and "
                    f"rejected {len(result.rejected)}"
                )
            serials = self.batch_serials(ws, result.batch_id)
            for device in affected:
                for usage, serial in serials[device.eui64].items():
                    old, new = (ws.inventory.certificate(ca, s) for ca, s in ((device.ca, device.serials[usage]),
                                                                              (self.issuing, serial)))  # fmt: skip
                    assert old is not None and new is not None
                    if _public_key(old.der) != _public_key(new.der):
                        raise SimulationFailure(f"step {self.step}: {device.eui64} {usage}: another key re-certified")
                device.serials, device.ca = serials[device.eui64], self.issuing

    def rollover(self, day: date) -> None:
        """A root rollover: the new root with link certificates both ways, generation 2 of the issuing CA re-certified
        under it (its key backed up, restore-tested and the test copy destroyed on the days after, as day one did)."""
        self.ceremony("root-rollover", self.at(day, 11), {"recertify": [ISSUING_G2]})
        self.roots.append(ROOT_G2)
        self.last_crl[ROOT] = self.last_crl[ROOT_G2] = self.at(day, 11)  # both ARLs published in the ceremony

    def new_root_backup(self, day: date) -> None:
        """The new root key's backup (day 1 after the rollover), restore test (day 2), test copy destroyed (day 3),
        with the backup key's custodians who have not left; each in the afternoon, after the day's work."""
        kek = [c for c in ("carol", "dave", "erin", "frank", "grace") if c not in self.left]
        bags = {c: f"TEB-{day.year}3{i}" for i, c in enumerate(kek)}
        backup = "artifacts/backups/ca-s1sp-root-g2.wrapped"
        seats = {"participants.custodians": kek, "quorum": {"m": 3, "n": len(kek)}, "bags.share_cards": bags}
        # A restore test initialises a fresh token (the first one's stays on the HSM inventory).
        token = {"token.label": RESTORE_TOKEN_G2, "bags.tokens": {RESTORE_TOKEN_G2: f"TEB-{day.year}39"}}
        key = {"key_label": "ca-s1sp-root-g2"}
        after = (day - ROLLOVER_DAY).days
        if after == 1:
            self.ceremony("key-backup", self.at(day, 14), {
                **seats, **key, "outputs": {"backup": backup, "backup_metadata": f"{backup}.json"},
            }, ceremony_id=f"key-backup-root-g2-{day:%Y-%m}")  # fmt: skip
        elif after == 2:
            self.ceremony("key-restore", self.at(day, 14), {
                **seats, **token, **key, "backup": backup, "ca": ROOT_G2,
            }, ceremony_id=f"key-restore-root-g2-{day:%Y-%m}")  # fmt: skip
        elif after == 3:
            self.ceremony("key-destruction", self.at(day, 14), {
                **seats, **token, **key,
                "reason": "restore test complete: the test token's copy of the new root key is destroyed",
            }, ceremony_id=f"key-destruction-root-g2-{day:%Y-%m}")  # fmt: skip

    def annual_assessment(self, day: date) -> None:
        """The assessor's annual assessment (of last year's pack) entered in the assessment register (GOV-02)."""
        path = self.root / "registers" / "assessments.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        last = self.assessments[-1].verdict if self.assessments else "approved"
        data["assessments"].append({
            "id": f"AA-{day.year}",
            "type": "annual",
            "date": day.isoformat(),
            "assessor": "Wendy Walsh",
            "assessor_organisation": "Independent assessor",
            "outcome": last,
        })  # fmt: skip
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.record(f"annual assessment AA-{day.year}")

    def incident(self, day: date) -> None:
        path = self.root / "registers" / "incidents.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["incidents"].append({
            "id": f"INC-{day.year}-001",
            "kind": "other",
            "summary": "courier delayed a tamper-evident bag by one day; seal intact on arrival",
            "detected_at": self.at(day, 8).isoformat(),
        })  # fmt: skip
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.record(f"incident INC-{day.year}-001")

    # --- invariants ---------------------------------------------------------------------------------------
    def findings(self, controls: tuple[str, ...] | None = None) -> list[Any]:
        """The catalogue's findings on the workspace now (only ``controls``, when given)."""
        with self.opened() as ws:
            ev = Evidence(ws, pack_folders=(ws.reports_dir / "evidence",))
            if controls is None:
                return run_checks(self.catalogue, ev)
            chosen = [c for c in self.catalogue.controls if c.id in controls]
            return apply_waivers([f for c in chosen for f in run_control(c, ev)], ev)

    def check(self, findings: list[Any] | None = None) -> None:
        """What must hold after every step: nothing at rest, no FATAL finding, the records agreeing."""
        self.check_at_rest()
        broken = violations(findings if findings is not None else self.findings())
        if broken:
            raise SimulationFailure(
                f"step {self.step}: {broken[0]}" + (f" (and {len(broken) - 1} more)" if broken[1:] else "")
            )

    def check_at_rest(self) -> None:
        for where in ("secrets", "share-cards"):
            left = [p for p in (self.root / where).rglob("*") if p.is_file()] if (self.root / where).exists() else []
            if left:
                raise SimulationFailure(f"step {self.step}: KEY-09 at rest: {left[0].relative_to(self.root)}")

    # --- the annual assessment ------------------------------------------------------------------------------
    def assess(self, year: int) -> None:
        day = date(START.year + year, START.month, START.day) - timedelta(days=1)
        at = self.at(day, 16)
        started = time.perf_counter()
        with self.doing(at, "assessment", f"year {year}", check=False):
            self.activate()  # the assessment reads the token's key attributes: custodians open it for the pack
            ref = token_ref("victor-card", find_softhsm_module(), self.base / "own-tokens" / "victor" / "softhsm2.conf")
            with self.opened() as ws, patch.dict(os.environ, {PERSON_PIN_ENV: OWN_TOKEN_PIN}):
                pack = build_pack(ws, person="victor", token=ref, pdf=False)
            self.deactivate()
            data = json.loads((pack.directory / "findings.json").read_text(encoding="utf-8"))
            if year > 1 and not data.get("previous_pack"):
                raise SimulationFailure(f"step {self.step}: the pack was not compared with the previous one")
        findings = [SimpleNamespace(**f) for f in data["findings"]]  # what the pack found, as the assessor reads it
        self.check(findings)
        problems = sorted({finding_key(f) for f in findings if f.outcome not in ("pass", "not-applicable")})
        counts = dict(Counter(f.outcome for f in findings))
        self.assessments.append(
            Assessment(
                at.date().isoformat(),
                pack.verdict,
                counts.get("fatal", 0),
                problems,
                counts,
                time.perf_counter() - started,
            )  # fmt: skip
        )
        self.say(f"year {year} ({at.date()}): {pack.verdict}; {len(problems)} findings; {self.steps} steps")


def _rehearse(
    path: Path, root: Path, shares: dict[str, dict[str, str]], components: dict[str, dict[str, str]]
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """A rehearsal in the rehearsal area, in a process of its own; returns what its custodians now hold."""
    people = People()
    people.shares, people.components = shares, components
    procedures.run(path, root, rehearsal=True, console=people)
    return people.shares, people.components


def _public_key(der: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _csr(subject: Any) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    csr = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


class People(Custodians):
    """The custodians of the simulated PKI: each takes their card away (printed, then removed from the disk, as
    an officer does in a live workspace) and, at activation, the custodians on duty present what they hold."""

    def __init__(self) -> None:
        super().__init__()
        self.on_duty: list[str] = []

    def reenter_share(self, custodian: str, card: Path) -> str:
        words = super().reenter_share(custodian, card)
        card.unlink()
        return words

    def reenter_component(self, custodian: str, card: Path) -> str:
        value = super().reenter_component(custodian, card)
        card.unlink()
        return value

    def present_shares(self, purpose: str, custodians: list[str], m: int) -> list[tuple[str, str]]:
        if not self.on_duty:
            return super().present_shares(purpose, custodians, m)
        held = self.shares.get(purpose, {})
        return [(who, held[who]) for who in self.on_duty if who in held][:m]


#: One thing done wrong on purpose, to show the simulation failing on it.
BREAKS = {
    "skip-crl": "from 2027-01-01 the operator forgets the issuing CA's CRLs (REV-01 fails once the last one expires)",
}

HSMS = """# HSM inventory of the simulated PKI: SoftHSM2 stands in for the HSM, and says so (KEY-01 is waived).
schema_version: 1
hsms:
  - id: sim-softhsm
    model: SoftHSM2 (software token, lifetime simulation stand-in)
    firmware: "2.6"
    fips_certificate: none
    fips_level: 0
    location: the simulation's machine
    token_labels: [s1sp-ca-token, s1sp-restore-token, s1sp-restore-token-2, s1sp-rewrap-token]
"""


def waivers(today: date) -> str:
    """The PMA's waivers for the simulation, renewed each year until ``today`` + 13 months."""
    until = (today + timedelta(days=400)).isoformat()
    return f"""# Waivers of the simulated PKI, renewed each year by the PMA (approved by victor, recorded by alice).
schema_version: 1
waivers:
  - control: KEY-01
    subject: token s1sp-ca-token
    reason: the simulation runs on SoftHSM2; a live PKI generates its keys in FIPS 140-3 level 3 HSMs
    approved_by: victor
    expires: "{until}"
  - control: KEY-01
    subject: token s1sp-restore-token
    reason: the simulation runs on SoftHSM2; a live PKI generates its keys in FIPS 140-3 level 3 HSMs
    approved_by: victor
    expires: "{until}"
  - control: KEY-01
    subject: token s1sp-restore-token-2
    reason: the simulation runs on SoftHSM2; a live PKI generates its keys in FIPS 140-3 level 3 HSMs
    approved_by: victor
    expires: "{until}"
  - control: KEY-01
    subject: token s1sp-rewrap-token
    reason: the simulation runs on SoftHSM2; a live PKI generates its keys in FIPS 140-3 level 3 HSMs
    approved_by: victor
    expires: "{until}"
  - control: CER-08
    reason: the simulated ceremonies are not filmed; a live PKI's recordings are hashed into its archive
    approved_by: victor
    expires: "{until}"
"""
