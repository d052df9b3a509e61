"""Certificate profiles, loaded from data/profiles/*.yaml; every rule is data citing its clause."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ceremony.errors import ConfigError, InputError
from ceremony.model.config import Strict, data_dir, load_model

KeyAlgorithm = Literal["ec-p256", "ec-p384", "rsa-3072"]
SignatureAlgorithm = Literal["ecdsa-with-SHA256", "ecdsa-with-SHA384", "sha256WithRSAEncryption"]
KeyUsageBit = Literal[
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
]
Presence = Literal["required", "optional", "absent"]
Violation = Literal["error", "warning"]
Kind = Literal["root-ca", "issuing-ca", "link-ca", "organisation", "device"]


class ExtensionRule(Strict):
    """Presence and criticality of one extension; ``on_violation`` grades the finding."""

    presence: Presence
    critical: bool | None = None
    on_violation: Violation = "error"


class BasicConstraintsRule(ExtensionRule):
    ca: bool = False
    path_length: int | None = None


class KeyUsageRule(ExtensionRule):
    bits: list[KeyUsageBit] = Field(default_factory=list)
    one_of: list[KeyUsageBit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> KeyUsageRule:
        if self.presence != "absent" and bool(self.bits) == bool(self.one_of):
            raise ValueError("give exactly one of bits (all of them) or one_of (exactly one)")
        return self


class KeyIdentifierRule(ExtensionRule):
    #: GBCS 12: RFC 5280 4.2.1.2 method 2, 8 octets (0x4 nibble + low 60 bits of SHA-1).
    method: Literal["rfc5280-method2-8", "any"] = "rfc5280-method2-8"


class PoliciesRule(ExtensionRule):
    #: Symbolic names resolved through the profile set's ``oids`` table; exactly one must appear.
    policies: list[str] = Field(default_factory=list)


class SubjectAltNameRule(ExtensionRule):
    #: Symbolic name of the hwType OID of the HardwareModuleName otherName (RFC 4108).
    hw_type: str | None = None
    serial_octets: int = 8


class ExtensionRules(Strict):
    basic_constraints: BasicConstraintsRule
    key_usage: KeyUsageRule
    subject_key_identifier: KeyIdentifierRule
    authority_key_identifier: KeyIdentifierRule
    certificate_policies: PoliciesRule
    subject_alt_name: SubjectAltNameRule = SubjectAltNameRule(presence="absent")
    extended_key_usage: ExtensionRule = ExtensionRule(presence="absent")
    crl_distribution_points: ExtensionRule = ExtensionRule(presence="optional", critical=False)
    others: Literal["forbidden", "allowed"] = "forbidden"


Encoding = Literal["utf8String", "printableString"]


def _both_encodings() -> list[Encoding]:
    return ["utf8String", "printableString"]


class SubjectAttribute(Strict):
    type: Literal["CN", "OU", "O", "x500UniqueIdentifier"]
    required: bool = True
    #: Where the value comes from: the approved request's name, role or EUI-64.
    source: Literal["name", "role", "eui64"]
    encodings: list[Encoding] = Field(default_factory=_both_encodings)


class SubjectRule(Strict):
    form: Literal["empty", "dn"]
    attributes: list[SubjectAttribute] = Field(default_factory=list)
    #: Allowed RemotePartyRole codes (two hex digits) for the OU attribute.
    roles: list[str] = Field(default_factory=list)
    order: Literal["as-listed", "any"] = "as-listed"


class ValidityRule(Strict):
    default_days: int = Field(gt=0)
    max_days: int | None = Field(default=None, gt=0)
    #: A fixed notAfter (GBCS device sentinel 99991231235959Z), GeneralizedTime.
    fixed_not_after: str | None = None
    within_issuer: bool = True
    on_violation: Violation = "error"


class Profile(Strict):
    """One certificate profile (a row set of DOMAIN.md's profile tables)."""

    kind: Kind
    policy_ref: str
    description: str
    issued_by: list[str] = Field(default_factory=list)
    key_algorithms: list[KeyAlgorithm]
    signature_algorithms: list[SignatureAlgorithm]
    serial_octets: int = 16
    serial_octets_on_violation: Violation = "error"
    validity: ValidityRule
    subject: SubjectRule
    extensions: ExtensionRules

    @property
    def is_ca(self) -> bool:
        return self.kind in ("root-ca", "issuing-ca", "link-ca")


class ProfileSet(Strict):
    schema_version: Literal[1]
    name: str
    policy_document: str
    #: Symbolic OID names → dotted OIDs. Demo/test values sit under 1.3.6.1.4.1.32473 (RFC 5612);
    #: production values come from the workspace configuration.
    oids: dict[str, str]
    role_codes: dict[str, str]
    profiles: dict[str, Profile]

    @model_validator(mode="after")
    def _references_resolve(self) -> ProfileSet:
        for pname, p in self.profiles.items():
            names = list(p.extensions.certificate_policies.policies)
            if p.extensions.subject_alt_name.hw_type:
                names.append(p.extensions.subject_alt_name.hw_type)
            for sym in names:
                if sym not in self.oids:
                    raise ValueError(f"profiles.{pname} names OID {sym!r}, not in oids")
            for role in p.subject.roles:
                if role not in self.role_codes:
                    raise ValueError(f"profiles.{pname}.subject.roles: {role!r} not in role_codes")
        return self


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile with its set's OIDs resolved: what issuance and checks consume."""

    name: str
    set_name: str
    rules: Profile
    oids: dict[str, str]
    role_codes: dict[str, str]

    @property
    def policy_oids(self) -> list[str]:
        return [self.oids[s] for s in self.rules.extensions.certificate_policies.policies]

    @property
    def hw_type_oid(self) -> str | None:
        sym = self.rules.extensions.subject_alt_name.hw_type
        return self.oids[sym] if sym else None


@cache
def load_profile_set(path: Path) -> ProfileSet:
    """Read one profile-set file strictly."""
    return load_model(ProfileSet, path)


def profile_files() -> list[Path]:
    """All profile-set files shipped in data/profiles."""
    files = sorted((data_dir() / "profiles").glob("*.yaml"))
    if not files:
        raise ConfigError(f"no profile files in {data_dir() / 'profiles'}")
    return files


def available_profiles() -> dict[str, Path]:
    """Profile name → the file defining it (names are unique across sets)."""
    found: dict[str, Path] = {}
    for path in profile_files():
        for name in load_profile_set(path).profiles:
            if name in found:
                raise ConfigError(f"profile {name!r} is defined in {found[name]} and {path}")
            found[name] = path
    return found


def get_profile(name: str, oid_overrides: dict[str, str] | None = None) -> ResolvedProfile:
    """The named profile with OIDs resolved (workspace overrides win over the file's values)."""
    known = available_profiles()
    if name not in known:
        raise InputError(f"unknown profile {name!r}; known: {', '.join(sorted(known))}")
    pset = load_profile_set(known[name])
    oids = {**pset.oids, **{k: v for k, v in (oid_overrides or {}).items() if k in pset.oids}}
    return ResolvedProfile(name, pset.name, pset.profiles[name], oids, dict(pset.role_codes))
