"""S1SPKI ceremony workbench: certificate issuance, key ceremonies and compliance evidence."""

from __future__ import annotations

from ceremony.errors import CeremonyError

__all__ = ["CeremonyError", "__version__"]
__version__ = "0.1.0"
