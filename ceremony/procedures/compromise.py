"""The CA revocation ceremony: the answer to a CA key's compromise (RFC 5280 5.3.1; S1SPKI CP 5.7.3).

The custodians activate the token; the revoked CA's certificate is revoked (keyCompromise or cACompromise, one
person asking and an approver approving); its issuer's ARL listing it is signed with the issuer's key inside the
ceremony (DOMAIN.md profile E: "at every ceremony"); every certificate the revoked CA issued that is still valid
is listed, with a re-certification plan for its devices (a device list naming their CSRs in the inventory's
archive); and the incident's timeline goes on record. The times come from the inventory and the ARL itself, the
detection and the PMA's notification from the incident register.

A rehearsal runs in the rehearsal area, which holds no live CA: it revokes CAs of the area's throwaway token
(those an earlier root-ca and issuing-ca rehearsal made there, else throwaway ones it makes itself).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509

from ceremony.errors import ConfigError, StateError
from ceremony.fs import write_once
from ceremony.issue.batch.devices import RECORDED
from ceremony.issue.crl import Published, publish_crl
from ceremony.issue.revocation import revoke
from ceremony.issue.single import create_ca
from ceremony.model.ceremony_file import CaRevocationCeremony
from ceremony.model.config import load_model
from ceremony.model.events import Action
from ceremony.model.profiles import available_profiles, get_profile
from ceremony.model.registers import Incident, IncidentRegister, register_path
from ceremony.procedures.asymmetric import refuse_token_label
from ceremony.procedures.base import Procedure
from ceremony.record.inventory import CertificateRecord
from ceremony.record.revocations import revocation

#: The incident kinds a CA revocation answers (registers/incidents.yaml).
COMPROMISE_KINDS = ("key-compromise", "suspected-compromise")
#: The columns of the affected-certificates list.
AFFECTED_COLUMNS = (
    "serial", "profile", "subject", "eui64", "usage", "role", "name", "not_after", "csr_sha256", "fingerprint",
)  # fmt: skip
#: The re-certification plan: ``ceremony issue --devices`` columns first (each CSR ``recorded:<sha256>``, from the
#: inventory's archive), then the serial of the revoked CA's certificate it replaces.
PLAN_COLUMNS = ("eui64", "usage", "csr", "serial")


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _csv(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


class CaRevocation(Procedure):
    TYPE = "ca-revocation"
    SCRIPT: ClassVar[tuple[tuple[str, str], ...]] = (
        ("activate", "custodians present their PIN shares; the token is activated for the issuer's key"),
        ("revoke", "revoke the CA's certificate for its compromise, as requested and approved by two people"),
        ("publish-arl", "sign the issuer's ARL listing the revoked CA certificate, with the issuer's key; lint it"),
        ("list-affected", "list every certificate the revoked CA issued that is still valid; write the "
                          "re-certification plan"),
        ("record-incident", "record the incident's timeline: detection, revocation, ARL, PMA notification"),
    )  # fmt: skip

    # --- before anything is written ------------------------------------------------------------
    @property
    def live_root(self) -> Path:
        """The live workspace's folder (the rehearsal area lies inside it): its incident register is the one."""
        return self.ws.root.parent if self.rehearsal else self.ws.root

    def expected_outputs(self) -> dict[str, str]:
        folder = f"artifacts/compromise/{self.spec.ceremony_id}"
        return {
            "affected_certificates": f"{folder}/affected-certificates.csv",
            "recertification_plan": f"{folder}/recertification-devices.csv",
        }

    def check(self) -> None:
        super().check()
        refuse_token_label(self, "CA keys live on")
        self.incident = self._incident()
        spec: CaRevocationCeremony = self.spec
        src, known = self.ceremony.path, self.ws.inventory.ca_names()
        if self.rehearsal and spec.ca not in known and spec.issuer not in known:
            return  # the activation step makes throwaway CAs of these names on the throwaway token
        if spec.ca not in known:
            raise ConfigError(
                f"{src}: ca: no CA named {spec.ca!r} in {self.ws.root} (known: {', '.join(known) or 'none'})"
            )
        ca = self.ws.inventory.ca(spec.ca)
        if ca.issuer_ca != spec.issuer:
            raise ConfigError(
                f"{src}: issuer: CA {spec.ca}'s certificate was issued by {ca.issuer_ca or 'itself (a root)'}, "
                f"not by {spec.issuer}; the ARL that revokes it is its issuer's"
            )
        done = revocation(self.ws.inventory, spec.issuer, ca.serial)
        if done is not None:
            where = " (an earlier rehearsal: remove the rehearsal area to rehearse again)" if self.rehearsal else ""
            raise StateError(
                f"{src}: ca: CA {spec.ca}'s certificate (serial {ca.serial}) is already revoked, {done.reason} at "
                f"{done.revoked_at}{where}; it is not revoked twice"
            )
        if self.ws.inventory.ca(spec.issuer).key_store != self.ws.config.key_store.kind:
            raise ConfigError(f"{src}: issuer: CA {spec.issuer}'s key is not in this workspace's key store")

    def _incident(self) -> Incident:
        """The incident the file names, from the live workspace's register (else the example in data/)."""
        spec: CaRevocationCeremony = self.spec
        path = register_path("incidents", self.live_root)
        incidents = load_model(IncidentRegister, path).incidents
        found = next((i for i in incidents if i.id == spec.incident), None)
        if found is None:
            known = ", ".join(i.id for i in incidents) or "none"
            raise ConfigError(
                f"{self.ceremony.path}: incident: no incident {spec.incident!r} in {path} (known: {known})"
            )
        if found.kind not in COMPROMISE_KINDS:
            raise ConfigError(
                f"{self.ceremony.path}: incident: {found.id} is a {found.kind!r} incident; a CA is revoked for a "
                f"{' or '.join(COMPROMISE_KINDS)}"
            )
        if found.ca is not None and found.ca != spec.ca:
            raise ConfigError(
                f"{self.ceremony.path}: ca: incident {found.id} is the compromise of CA {found.ca}, not {spec.ca}"
            )
        return found

    # --- the steps ----------------------------------------------------------------------------
    def do_activate(self) -> dict[str, Any]:
        entry = self._activate(self.token.label)
        if self.rehearsal:
            self._rehearsal_cas()
        issuer = self.ws.inventory.ca(self.spec.issuer)
        self.seal_with = (self._key_store(), issuer.key_label)
        return entry

    def _rehearsal_cas(self) -> None:
        """The rehearsal area's CAs to revoke: made on the throwaway token when it has none of these names (the area
        checks people against its live workspace's register, :func:`ceremony.model.people.default_register`)."""
        spec: CaRevocationCeremony = self.spec
        made: dict[str, Any] = {}
        if spec.issuer not in self.ws.inventory.ca_names():
            root, issuing = _throwaway_profiles(self.ws.config.oids)
            approver = spec.approved_by
            made["cas"] = [
                create_ca(self.ws, spec.issuer, profile_name=root, common_name=f"Rehearsal {spec.issuer}",
                          approved_by=approver).record.serial,
                create_ca(self.ws, spec.ca, profile_name=issuing, common_name=f"Rehearsal {spec.ca}",
                          approved_by=approver, issuer_ca=spec.issuer).record.serial,
            ]  # fmt: skip
        if made:
            self._record(
                Action.REHEARSAL_TOKEN,
                f"rehearsal: throwaway CAs {spec.issuer!r} and {spec.ca!r} made on the throwaway token",
                [self.spec.participants.administrator],
                details={"throwaway_ca_serials": made.get("cas")},
            )

    def do_revoke(self) -> dict[str, Any]:
        spec: CaRevocationCeremony = self.spec
        ca = self.ws.inventory.ca(spec.ca)
        gate = self._gate("revoke", f"revoke CA {spec.ca}'s certificate ({spec.reason})", self.operators)
        (done,) = revoke(
            self.ws,
            ca_name=spec.issuer,
            serial=ca.serial,
            reason=spec.reason,
            requested_by=spec.requested_by,
            approved_by=spec.approved_by,
        )
        self.serial = done.serial
        return self._record(
            Action.CA_REVOKE,
            f"CA {spec.ca}'s certificate (serial {done.serial}) revoked by {spec.issuer}: {spec.reason}",
            [*self.operators, spec.requested_by, spec.approved_by],
            details={
                "ca": spec.ca,
                "issuer": spec.issuer,
                "serial": done.serial,
                "reason": spec.reason,
                "requested_by": spec.requested_by,
                "approved_by": spec.approved_by,
                "revoked_at": done.revoked_at,
                "incident": spec.incident,
                **gate,
            },
        )

    def do_publish_arl(self) -> dict[str, Any]:
        spec: CaRevocationCeremony = self.spec
        gate = self._gate("publish-arl", f"sign {spec.issuer}'s ARL listing CA {spec.ca}", self.operators)
        published: Published = publish_crl(self.ws, spec.issuer, by=self.operators[0])
        crl = x509.load_der_x509_crl(published.path.read_bytes())
        entry = crl.get_revoked_certificate_by_serial_number(int(self.serial, 16))
        listed = entry is not None
        reason = None
        if entry is not None:
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
            except x509.ExtensionNotFound:
                reason = "unspecified"
        self.arl = published
        record = self._record(
            Action.ARL_PUBLISH,
            f"{published.kind.upper()} {published.number} of {spec.issuer} signed in the ceremony; it lists CA "
            f"{spec.ca}'s certificate" + ("" if listed else " NOT"),
            self.operators,
            outputs=self._output("arl", published.path),
            details={
                "issuer": spec.issuer,
                "kind": published.kind,
                "number": published.number,
                "entries": published.entries,
                "this_update": published.this_update.isoformat(),
                "next_update": published.next_update.isoformat(),
                "artifact": self._rel(published.path),
                "lists_serial": self.serial if listed else None,
                "entry_reason": reason,
                **gate,
            },
            result="ok" if listed else f"failed: serial {self.serial} is not on the {published.kind.upper()}",
        )
        if not listed:
            raise StateError(f"the {published.kind.upper()} just signed does not list serial {self.serial}")
        return record

    def do_list_affected(self) -> dict[str, Any]:
        spec: CaRevocationCeremony = self.spec
        now = self.ws.clock.now()
        affected = [r for r in self.ws.inventory.valid_certificates_of_ca(spec.ca) if _time(r.not_after) > now]
        devices = [r for r in affected if r.eui64 and r.usage and r.role is None]
        planned = self._recorded(devices)
        without = len(devices) - len(planned)
        paths = {name: self.ws.root / rel for name, rel in self.expected_outputs().items()}
        write_once(paths["affected_certificates"], _csv(AFFECTED_COLUMNS, [_affected_row(r) for r in affected]))
        write_once(paths["recertification_plan"], _csv(PLAN_COLUMNS, [_plan_row(r) for r in planned]))
        profiles = sorted({r.profile for r in affected})
        return self._record(
            Action.AFFECTED_LIST,
            f"{len(affected)} certificates of CA {spec.ca} still valid, to re-certify under another CA; "
            f"{len(planned)} devices in the re-certification plan"
            + (f", {without} without an archived CSR (they need a fresh CSR)" if without else ""),
            [*self.operators, *spec.participants.witnesses],
            outputs={
                **self._output("affected_certificates", paths["affected_certificates"]),
                **self._output("recertification_plan", paths["recertification_plan"]),
            },
            details={
                "ca": spec.ca,
                "affected": len(affected),
                "by_profile": {p: sum(1 for r in affected if r.profile == p) for p in profiles},
                "devices": len(planned),
                # The plan names each device's CSR in the inventory's archive, its proof of possession; the
                # identity comes from the plan, approved as a device list (DESIGN principle 7).
                "csr_column": "recorded:<csr_sha256> (a CSR in the inventory's archive)",
                # Device certificates whose CSR the archive does not hold (issued before it existed, recovered
                # after a crash, imported): listed as affected, left out of the plan.
                "devices_without_recorded_csr": without,
                "others": len(affected) - len(devices),
            },
        )

    def _recorded(self, devices: list[CertificateRecord]) -> list[CertificateRecord]:
        """The device certificates whose CSR the archive holds, intact, for their own EUI-64 and usage: what
        ``ceremony issue --devices`` takes from the plan's ``recorded:`` rows."""
        asked = [r for r in devices if r.csr_sha256]
        found = self.ws.inventory.recorded_csrs([(r.eui64 or "", r.usage or "", r.csr_sha256 or "") for r in asked])
        return [r for r, csr in zip(asked, found, strict=True) if isinstance(csr, bytes)]

    def do_record_incident(self) -> dict[str, Any]:
        spec: CaRevocationCeremony = self.spec
        incident, rules = self.incident, self.policy
        revoked = revocation(self.ws.inventory, spec.issuer, self.serial)
        assert revoked is not None  # the revoke step recorded it
        detected = _time(incident.detected_at)
        revoked_at = _time(revoked.revoked_at)
        arl_at = self.arl.this_update.astimezone(timezone.utc)
        notified = _time(incident.pma_notified_at) if incident.pma_notified_at else None
        limits = {
            "revocation_hours": rules.compromise.revocation_hours if rules.compromise else None,
            "arl_publication_hours": rules.compromise.arl_publication_hours if rules.compromise else None,
            "pma_notification_hours": rules.compliance.incident_notification_hours,
        }
        taken = {
            "detection_to_revocation_hours": _hours(revoked_at - detected),
            "revocation_to_arl_hours": _hours(arl_at - revoked_at),
            "detection_to_pma_hours": None if notified is None else _hours(notified - detected),
        }
        on_time = {
            "revocation": _within(taken["detection_to_revocation_hours"], limits["revocation_hours"]),
            "arl": _within(taken["revocation_to_arl_hours"], limits["arl_publication_hours"]),
            "pma_notification": _within(taken["detection_to_pma_hours"], limits["pma_notification_hours"]),
        }
        late = [name for name, ok in on_time.items() if ok is False]
        pending = "" if notified else "; the PMA's notification is not on the incident register yet"
        return self._record(
            Action.INCIDENT_RECORD,
            f"incident {incident.id} ({incident.kind}): detected {detected:%Y-%m-%d %H:%M}Z, CA {spec.ca} revoked "
            f"{revoked_at:%Y-%m-%d %H:%M}Z, on {spec.issuer}'s {self.arl.kind.upper()} of {arl_at:%Y-%m-%d %H:%M}Z"
            + (f", PMA notified {notified:%Y-%m-%d %H:%M}Z" if notified else "")
            + pending,
            [spec.participants.administrator, *spec.participants.witnesses],
            details={
                "incident": incident.id,
                "kind": incident.kind,
                "summary": incident.summary,
                "ca": spec.ca,
                "timeline": {
                    "detected_at": detected.isoformat(),
                    "revoked_at": revoked_at.isoformat(),
                    "arl_this_update": arl_at.isoformat(),
                    "pma_notified_at": None if notified is None else notified.isoformat(),
                },
                "taken": taken,
                "limits": limits,
                "on_time": on_time,
                "sources": {
                    "detected_at": "incident register",
                    "revoked_at": "inventory (revocations)",
                    "arl_this_update": f"{self._rel(self.arl.path)} thisUpdate",
                    "pma_notified_at": "incident register",
                },
            },
            result="ok" if not late else "late: " + ", ".join(late),
        )


def _within(hours: float | None, limit: int | None) -> bool | None:
    """On time (None: not decided: no time on record yet, or no limit in the policy parameters)."""
    return None if hours is None or limit is None else hours <= limit


def _affected_row(r: CertificateRecord) -> list[str]:
    return [r.serial, r.profile, r.subject, r.eui64 or "", r.usage or "", r.role or "", r.name or "", r.not_after,
            r.csr_sha256 or "", r.fingerprint]  # fmt: skip


def _plan_row(r: CertificateRecord) -> list[str]:
    return [r.eui64 or "", r.usage or "", f"{RECORDED}{r.csr_sha256}", r.serial]


def _throwaway_profiles(oids: dict[str, str]) -> tuple[str, str]:
    """A root and an issuing CA profile it may issue under (the first of the profile files that has both)."""
    names = list(available_profiles())
    kinds = {name: get_profile(name, oids).rules for name in names}
    for root in (n for n in names if kinds[n].kind == "root-ca"):
        for issuing in (n for n in names if kinds[n].kind == "issuing-ca" and root in kinds[n].issued_by):
            return root, issuing
    raise ConfigError("no root and issuing CA profiles to make the rehearsal's throwaway CAs under")
