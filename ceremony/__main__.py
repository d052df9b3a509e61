"""`python -m ceremony` runs the command line."""

from __future__ import annotations

import sys

from ceremony.cli.main import main

sys.exit(main())
