"""Control findings: what a check reports (pass, fail, not applicable, indeterminate, fatal) with a stable id."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ceremony.compliance.sources import Evidence
from ceremony.model.catalogue import Control
from ceremony.model.policy import ControlOutcome


@dataclass(frozen=True)
class ControlFinding:
    control: str
    outcome: ControlOutcome
    #: What the finding is about ("" for the control as a whole), e.g. "transcript root-ca-2026-12".
    subject: str
    #: A short code, stable across runs, that with control and subject makes the finding's id.
    code: str
    message: str
    evidence: tuple[str, ...] = ()
    severity: str = ""
    waived: dict[str, str] | None = None

    @property
    def id(self) -> str:
        """Stable across packs: the same problem on the same subject keeps its id."""
        digest = hashlib.sha256(f"{self.control}|{self.subject}|{self.code}".encode()).hexdigest()
        return f"{self.control}-{digest[:8]}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["evidence"] = list(self.evidence)
        return {"id": self.id, **out}


class Checker:
    """What a check reports through: failures, undecidable points, and what it looked at."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.findings: list[ControlFinding] = []
        self.looked_at: list[str] = []

    def _add(self, outcome: ControlOutcome, subject: str, code: str, message: str, evidence: Iterable[str]) -> None:
        self.findings.append(
            ControlFinding(self.control.id, outcome, subject, code, message, tuple(evidence), self.control.severity)
        )

    def fail(self, subject: str, code: str, message: str, *evidence: str) -> None:
        self._add("fail", subject, code, message, evidence)

    def indeterminate(self, subject: str, code: str, message: str, *evidence: str) -> None:
        self._add("indeterminate", subject, code, message, evidence)

    def not_applicable(self, why: str) -> None:
        self._add("not-applicable", "", "n/a", why, ())

    def checked(self, what: str) -> None:
        """Say what was examined; it becomes the pass message when nothing failed."""
        self.looked_at.append(what)


CheckFunction = Callable[[Evidence, Checker], None]
