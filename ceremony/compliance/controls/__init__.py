"""The checks of the S1SPKM catalogue (``data/controls/s1spkm.yaml``), one per control, registered here.

Each check reads the evidence (:class:`ceremony.compliance.sources.Evidence`) and reports failures and
undecidable points through its :class:`~ceremony.compliance.findings.Checker`; a check with nothing to
report passes with a summary of what it examined. Inventory checks work on whole frames (no
per-certificate Python loops); the signature and profile checks of every certificate run in worker
processes (:func:`ceremony.compliance.controls.certificates.certificate_pass`). A test holds this table
against the catalogue: a control without a check, or a check without a control, fails it.
"""

from __future__ import annotations

from ceremony.compliance.controls import (
    ceremonies,
    certificates,
    custody,
    governance,
    keys,
    logs,
    personnel,
    records,
    revocation,
)
from ceremony.compliance.findings import CheckFunction

CHECKS: dict[str, CheckFunction] = {
    "GOV-01": governance.documents_approved,
    "GOV-02": governance.assessment_cadence,
    "GOV-03": governance.findings_remediated,
    "GOV-04": governance.incidents_notified,
    "GOV-05": custody.workspace_marked,
    "GOV-06": records.registers_on_record,
    "GOV-07": governance.nothing_overdue,
    "CER-01": ceremonies.scripts_approved,
    "CER-02": ceremonies.transcripts_intact,
    "CER-03": ceremonies.transcripts_attested,
    "CER-04": ceremonies.witnessed,
    "CER-05": ceremonies.quorum_honoured,
    "CER-06": ceremonies.custodians_distinct,
    "CER-07": ceremonies.deviations_acknowledged,
    "CER-08": ceremonies.recorded,
    "CER-09": ceremonies.ca_certificate_as_named,
    "CER-10": ceremonies.attested_with_own_keys,
    "CER-11": ceremonies.abandonments_recorded,
    "KEY-01": keys.keys_in_hsm,
    "KEY-02": keys.root_in_ceremonies,
    "KEY-03": keys.key_inventory_complete,
    "KEY-04": keys.backups,
    "KEY-05": keys.activation_data,
    "KEY-06": keys.components,
    "KEY-07": keys.rotation,
    "KEY-08": keys.destruction,
    "KEY-09": custody.secrets_at_rest,
    "KEY-10": custody.shares_held_by_custodians,
    "CRT-01": certificates.profile_conformance,
    "CRT-02": certificates.key_identifiers,
    "CRT-03": certificates.serials,
    "CRT-04": certificates.validity,
    "CRT-05": certificates.policy_oids,
    "CRT-06": certificates.identities,
    "CRT-07": certificates.key_reuse,
    "CRT-08": certificates.issuance_authorised,
    "CRT-09": certificates.chains,
    "REV-01": revocation.crls_timely,
    "REV-02": revocation.crls_well_formed,
    "REV-03": revocation.revocations_published,
    "REV-04": revocation.revoked_serials_real,
    "REV-05": revocation.ca_compromises_answered,
    "LOG-01": logs.journal_intact,
    "LOG-02": logs.retention,
    "LOG-03": records.journal_anchored,
    "LOG-04": records.records_agree,
    "LOG-05": records.times_agree,
    "PER-01": personnel.vetted_and_trained,
    "PER-02": personnel.separation_of_duties,
}
