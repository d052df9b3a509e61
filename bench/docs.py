"""docs/benchmarks.md is made of sections, each opened by its benchmark's ``<!-- … benchmark -->`` mark;
a benchmark replaces its own section and leaves the others as they were."""

from __future__ import annotations

import re
from pathlib import Path

_MARK = re.compile(r"^<!-- [a-z]+ benchmark -->$", re.MULTILINE)


def replace_section(path: Path, mark: str, section: str) -> None:
    """Put ``section`` (which starts with ``mark``) in place of the old one, or at the end."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    starts = [m.start() for m in _MARK.finditer(text)]
    head = text[: starts[0]] if starts else text
    ends = [*starts[1:], len(text)]
    sections = {text[s:].split("\n", 1)[0]: text[s:e].rstrip() + "\n" for s, e in zip(starts, ends, strict=True)}
    sections[mark] = section.rstrip() + "\n"
    body = "\n".join(sections.values())
    path.write_text((head.rstrip() + "\n\n" if head.strip() else "") + body, encoding="utf-8")
