"""docs/benchmarks.md is made of sections, each opened by its benchmark's ``<!-- … benchmark -->`` mark;
a benchmark replaces its own section and leaves the others as they were."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def report(args: Any, mark: str, result: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> int:
    """The end of every benchmark's main: its section into ``--markdown``, then JSON or Markdown out."""
    import json

    if args.markdown:
        replace_section(Path(args.markdown), mark, markdown(result))
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0
