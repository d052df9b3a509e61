"""Findings are values: a severity, a dotted code, a message and the subject they concern."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that ``max()`` gives the worst; ERROR and FATAL fail a lint."""

    INFO = 10
    NOTICE = 20
    WARNING = 30
    ERROR = 40
    FATAL = 50


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    message: str
    subject: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity.name, "code": self.code, "message": self.message, "subject": self.subject}

    def __str__(self) -> str:
        where = f"{self.subject}: " if self.subject else ""
        return f"{where}{self.severity.name} {self.code}: {self.message}"


def failing(findings: list[Finding]) -> list[Finding]:
    """The findings that make a lint fail (ERROR or FATAL)."""
    return [f for f in findings if f.severity >= Severity.ERROR]
