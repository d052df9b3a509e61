"""CA generations: an issuing CA renewed with a new key, its predecessor issuing through the overlap and then
only signing CRLs for what it issued; and a root rollover with link certificates both ways.

Device certificates never expire (GBCS notAfter 99991231235959Z), so a predecessor's line does not end by
itself: it signs CRLs for as long as any certificate it issued is valid, and its end is a policy act (its
devices re-certified under the successor, the rest revoked, then its key destroyed in a key-destruction
ceremony). The one-valid-certificate rule is per issuing-CA key (issue J), so a device certified by the
predecessor may also hold a certificate from the successor.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509

from ceremony.errors import CeremonyError, ConfigError, StateError
from ceremony.model.ceremony_file import IssuingRenewalCeremony, RootRolloverCeremony
from ceremony.model.events import Action
from ceremony.procedures.asymmetric import IssuingCA, RootCA
from ceremony.record.inventory import Succession


class IssuingRenewal(IssuingCA):
    """A new issuing CA generation under the same root: the issuing-CA ceremony's steps, then the hand-over."""

    TYPE = "issuing-ca-renewal"
    SCRIPT = (
        *IssuingCA.SCRIPT,
        ("hand-over", "record the new CA as its predecessor's successor; the predecessor issues only through the "
         "overlap, then signs CRLs alone"),
    )  # fmt: skip

    def check(self) -> None:
        super().check()
        spec: IssuingRenewalCeremony = self.spec
        src, inventory = self.ceremony.path, self.ws.inventory
        if spec.predecessor not in inventory.ca_names():
            known = ", ".join(inventory.ca_names()) or "none"
            raise ConfigError(
                f"{src}: predecessor: no CA named {spec.predecessor!r} in this workspace (known: {known})"
            )
        old = inventory.ca(spec.predecessor)
        if old.role != "issuing":
            raise ConfigError(f"{src}: predecessor: {spec.predecessor} is a {old.role} CA; this ceremony renews an "
                              "issuing CA")  # fmt: skip
        if old.profile != spec.naming.profile:
            raise ConfigError(
                f"{src}: naming.profile: {spec.predecessor} issues under {old.profile}; its successor takes the same "
                f"profile (got {spec.naming.profile})"
            )
        taken = inventory.succession(spec.predecessor)
        if taken is not None:
            raise StateError(
                f"{src}: predecessor: {spec.predecessor} was already succeeded by {taken.successor} "
                f"({taken.ceremony_id}); renew {taken.successor} instead"
            )
        row = inventory.certificate(old.issuer_ca or old.name, old.serial)
        if row is not None and row.status != "valid":
            raise StateError(f"{src}: predecessor: {spec.predecessor}'s certificate is {row.status}; a revoked CA "
                             "is replaced by an issuing-ca ceremony, not renewed")  # fmt: skip

    def do_hand_over(self) -> dict[str, Any]:
        spec: IssuingRenewalCeremony = self.spec
        gate = self._gate(
            "hand-over",
            f"{spec.ca} succeeds {spec.predecessor}; {spec.predecessor} issues for {spec.overlap_days} more days",
            [spec.participants.administrator],
        )
        now = self.ws.clock.now().replace(microsecond=0)
        succession = Succession(
            predecessor=spec.predecessor,
            successor=spec.ca,
            ceremony_id=spec.ceremony_id,
            succeeded_at=now.isoformat(),
            issues_until=(now + timedelta(days=spec.overlap_days)).isoformat(),
        )
        with self.ws.inventory.transaction() as db:
            self.ws.inventory.record_succession(db, succession)
        generation = 1 + sum(1 for _ in _line(self.ws.inventory, spec.predecessor))
        return self._record(
            Action.CA_SUCCESSION,
            f"{spec.ca} (generation {generation}) succeeds {spec.predecessor}; the predecessor issues until "
            f"{succession.issues_until[:10]}, then signs CRLs only",
            [spec.participants.administrator],
            details={
                "predecessor": spec.predecessor,
                "successor": spec.ca,
                "generation": generation,
                "succeeded_at": succession.succeeded_at,
                "issues_until": succession.issues_until,
                **gate,
            },
        )


def _line(inventory: Any, name: str) -> list[str]:
    """``name`` and the CAs it succeeded, newest first."""
    by_successor = {s.successor: s.predecessor for s in inventory.successions()}
    line = [name]
    while line[-1] in by_successor:
        line.append(by_successor[line[-1]])
    return line


class RootRollover(RootCA):
    """A new root succeeding the old one: the root ceremony's key and certificate, then link certificates both
    ways, the issuing CAs re-certified under the new root, and the superseded certificates on the old root's ARL.

    After it a relying party that trusts the old root validates the new chains through the link certificate
    "new key under old root", and one that trusts the new root validates what the old root signed through
    "old key under new root". Both root keys sign only here: links, re-certifications, the revocations and both
    ARLs all fall inside this ceremony's window (KEY-02).
    """

    TYPE = "root-rollover"
    SCRIPT = (
        *RootCA.SCRIPT[:4],
        ("link-certificates", "each root certifies the other's key and name (link certificates both ways)"),
        ("recertify", "the new root certifies each issuing CA's key and name again"),
        ("supersede", "the old root's certificates of those issuing CAs are revoked as superseded; both roots' ARLs "
         "are published"),
        RootCA.SCRIPT[4],
    )  # fmt: skip

    def expected_outputs(self) -> dict[str, str]:
        cas = f"artifacts/cas/{self.spec.ca}"
        return {"certificate": f"{cas}.pem", "fingerprint_statement": f"{cas}.fingerprint.txt"}

    def check(self) -> None:
        from ceremony.model.people import check_role, workspace_register
        from ceremony.model.profiles import get_profile

        super().check()
        spec: RootRolloverCeremony = self.spec
        src, inventory = self.ceremony.path, self.ws.inventory
        names = inventory.ca_names()
        if spec.predecessor not in names:
            raise ConfigError(f"{src}: predecessor: no CA named {spec.predecessor!r} in this workspace "
                              f"(known: {', '.join(names) or 'none'})")  # fmt: skip
        if inventory.ca(spec.predecessor).role != "root":
            raise ConfigError(f"{src}: predecessor: {spec.predecessor} is not a root CA")
        old_cert = x509.load_der_x509_certificate(inventory.ca_certificate_der(spec.predecessor))
        old_cn = old_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if not old_cn or old_cn[0].value != spec.naming.common_name:
            # RFC 4210 5.3.1.2: the new root keeps the name. The link certificates are then self-issued, which
            # RFC 5280 6.1.4 (l) leaves out of every path length: under a root with pathLen 1 (profile A) a
            # renamed link would count, and old root -> link -> issuing CA -> device would exceed it.
            raise ConfigError(
                f"{src}: naming.common_name: a rollover keeps the root's name ({old_cert.subject.rfc4514_string()}), "
                f"so that its link certificates are self-issued and count toward no path length "
                f"(got {spec.naming.common_name!r})"
            )
        taken = inventory.succession(spec.predecessor)
        if taken is not None:
            raise StateError(f"{src}: predecessor: {spec.predecessor} was already succeeded by {taken.successor} "
                             f"({taken.ceremony_id})")  # fmt: skip
        try:
            link = get_profile(spec.links.profile, self.ws.config.oids)
        except CeremonyError as exc:
            raise ConfigError(f"{src}: links.profile: {exc.message}") from None
        if link.rules.kind != "link-ca":
            raise ConfigError(f"{src}: links.profile: {link.name} is for {link.rules.kind} certificates, not links")
        for i, name in enumerate(spec.recertify):
            if name not in names or inventory.ca(name).issuer_ca != spec.predecessor:
                raise ConfigError(f"{src}: recertify[{i}]: {name} is not an issuing CA of {spec.predecessor}")
        register = workspace_register(self.ws.root)
        try:
            check_role(register, spec.requested_by, None, "requested_by")
            check_role(register, spec.approved_by, "approver", "approved_by")
        except CeremonyError as exc:
            raise ConfigError(f"{src}: {exc.message}") from None

    def _certify(
        self, outputs: dict[str, str], output: str, *, subject: str, issuer: str, profile: str, days: int
    ) -> dict[str, Any]:
        """``subject``'s key certified by ``issuer`` in this ceremony (approved by its first approver); the new
        certificate goes into ``outputs`` as ``output``, and what the transcript records of it is returned."""
        from ceremony.issue.single import certify_ca_key

        spec: RootRolloverCeremony = self.spec
        approver = (self.approved_by or [spec.participants.administrator])[0]
        issued = certify_ca_key(self.ws, subject_ca=subject, issuer_ca=issuer, profile_name=profile,
                                approved_by=approver, days=days)  # fmt: skip
        outputs |= self._output(output, issued.artifact)
        return {"serial": issued.record.serial, "not_after": issued.certificate.not_valid_after_utc.isoformat(),
                "fingerprint": issued.record.fingerprint}  # fmt: skip

    def do_link_certificates(self) -> dict[str, Any]:
        spec: RootRolloverCeremony = self.spec
        gate = self._gate("link-certificates", f"{spec.predecessor} and {spec.ca} certify each other's keys",
                          self.operators)  # fmt: skip
        outputs: dict[str, str] = {}
        made = {
            name: {"subject_ca": subject, "issuer_ca": issuer,
                   **self._certify(outputs, f"link_{name}", subject=subject, issuer=issuer, profile=spec.links.profile,
                                   days=spec.links.validity_days)}
            for name, subject, issuer in (("new_under_old", spec.ca, spec.predecessor),
                                          ("old_under_new", spec.predecessor, spec.ca))
        }  # fmt: skip
        return self._record(
            Action.CERTIFICATE_ISSUE,
            f"link certificates: {spec.ca}'s key under {spec.predecessor}, {spec.predecessor}'s under {spec.ca}",
            self.operators,
            outputs=outputs,
            details={"links": made, **gate},
        )

    def do_recertify(self) -> dict[str, Any]:
        spec: RootRolloverCeremony = self.spec
        self.superseded: dict[str, str] = {}
        made: dict[str, Any] = {}
        outputs: dict[str, str] = {}
        for name in spec.recertify:
            ca = self.ws.inventory.ca(name)
            self.superseded[name] = ca.serial
            certified = self._certify(outputs, f"recertified_{name}", subject=name, issuer=spec.ca,
                                      profile=ca.profile, days=spec.recertify_validity_days)  # fmt: skip
            made[name] = {"superseded_serial": ca.serial, **certified}
        return self._record(
            Action.CERTIFICATE_ISSUE,
            f"{', '.join(spec.recertify)} re-certified under {spec.ca} (keys and names unchanged)",
            self.operators,
            outputs=outputs,
            details={"recertified": made},
        )

    def do_supersede(self) -> dict[str, Any]:
        from ceremony.issue.crl import publish_crl
        from ceremony.issue.revocation import revoke

        spec: RootRolloverCeremony = self.spec
        revoked: list[str] = []
        for serial in self.superseded.values():
            done = revoke(self.ws, ca_name=spec.predecessor, serial=serial, reason="superseded",
                          requested_by=spec.requested_by, approved_by=spec.approved_by)  # fmt: skip
            revoked += [d.serial for d in done]
        by = self.operators[0]
        old_arl = publish_crl(self.ws, spec.predecessor, by=by)
        new_arl = publish_crl(self.ws, spec.ca, by=by)
        now = self.ws.clock.now().replace(microsecond=0).isoformat()
        with self.ws.inventory.transaction() as db:
            self.ws.inventory.record_succession(
                db,
                Succession(
                    predecessor=spec.predecessor,
                    successor=spec.ca,
                    ceremony_id=spec.ceremony_id,
                    succeeded_at=now,
                    issues_until=now,
                ),  # fmt: skip
            )
        outputs = self._output("old_root_arl", old_arl.path) | self._output("new_root_arl", new_arl.path)
        return self._record(
            Action.CA_SUCCESSION,
            f"{len(revoked)} certificate(s) of {spec.predecessor} superseded on its ARL {old_arl.number}; "
            f"{spec.ca}'s first ARL {new_arl.number} published; {spec.ca} succeeds {spec.predecessor}",
            [spec.requested_by, spec.approved_by, *self.operators],
            outputs=outputs,
            details={
                "superseded": revoked,
                "requested_by": spec.requested_by,
                "approved_by": spec.approved_by,
                "old_root_arl": old_arl.number,
                "new_root_arl": new_arl.number,
                "predecessor": spec.predecessor,
                "successor": spec.ca,
            },  # fmt: skip
        )
