"""Key ceremonies: scripted steps, a hash-chained transcript, a seal. Notebooks call :func:`begin`."""

from __future__ import annotations

from ceremony.procedures.base import Outcome, Procedure
from ceremony.procedures.runner import PROCEDURES, begin, rehearsal_area, run

__all__ = ["PROCEDURES", "Outcome", "Procedure", "begin", "rehearsal_area", "run"]
