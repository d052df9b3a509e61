"""What the people in the room see of a ceremony in a notebook: one line per error, the words to read aloud.

A ceremony error raised in a JupyterLab (or papermill) kernel is shown as one line naming the step and,
where a share was wrong, whose share it was, instead of a traceback (the officer fixes the input, not the
code). The cell still fails as any failing cell does: the kernel answers the cell with an error, and the
error output carries the exception's name and message, so papermill stops and reports it and JupyterLab
stops a run of all cells there.

A step's read-aloud words (a fingerprint's words, bag numbers, check values) are public: they are shown in
the step's output so that the administrator reads them from the screen, not from a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ceremony.errors import CeremonyError

#: The attribute a step's error carries its step name in (set by :func:`mark_step`).
STEP_ATTRIBUTE = "ceremony_step"

_RED, _RESET = "\x1b[31m", "\x1b[0m"


# --- errors -----------------------------------------------------------------------------------
def mark_step(error: CeremonyError, step: str) -> None:
    """Say which step of the script ``error`` ended (its message stays as it was, for the CLI and records)."""
    setattr(error, STEP_ATTRIBUTE, step)


def error_line(error: CeremonyError) -> str:
    """The one line a notebook shows for ``error``: the step it ended, then what is wrong and what to do."""
    step = getattr(error, STEP_ATTRIBUTE, None)
    text = error.diagnostics()
    return f"step {step!r}: {text}" if step else text


def _one_line(shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """IPython's custom exception handler for ceremony errors (see :func:`install_error_display`)."""
    line = error_line(value) if isinstance(value, CeremonyError) else f"{etype.__name__}: {value}"
    # Shown as the cell's error output, with the exception's own name and message: the one line replaces
    # the traceback only, so the cell still fails for papermill, nbclient and JupyterLab alike.
    shell._showtraceback(etype, value, [f"{_RED}{line}{_RESET}"])


def install_error_display() -> bool:
    """In an IPython kernel, show every ceremony error as one line (no traceback); elsewhere do nothing.

    Returns:
        Whether a kernel (or IPython shell) was found and the handler installed.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: errors reach the CLI, which prints their one line itself
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc((CeremonyError,), _one_line)
    return True


# --- words to read aloud ----------------------------------------------------------------------
def _people(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{who} {bag or '(no bag recorded)'}" for who, bag in values.items())


def read_aloud_lines(details: Mapping[str, Any]) -> list[str]:
    """The public words a step's record gives the administrator to read aloud, one line each.

    Found by name anywhere in the step's details: ``words`` (a fingerprint's words), ``token_bag``,
    ``share_card_bags`` (per split), ``kcv`` (key check values), ``bag_sealed`` / ``bags_unsealed``
    (component bags). Nothing secret is ever among them: the record holds no secret.
    """
    lines: list[str] = []

    def walk(node: Mapping[str, Any], where: str) -> None:
        named = where or next((node[k] for k in ("purpose", "key") if isinstance(node.get(k), str)), "")
        of = f" of {named}" if named else ""
        for key, value in node.items():
            if key == "words" and isinstance(value, str):
                lines.append(f"fingerprint words{of}: {value}")
                if isinstance(node.get("sha256"), str):  # what the words stand for, as the statement prints it
                    lines.append(f"SHA-256{of}: {bytes.fromhex(node['sha256']).hex(':').upper()}")
            elif key == "token_bag" and value:
                lines.append(f"token bag: {value}")
            elif key == "share_card_bags" and isinstance(value, Mapping) and value:
                lines.append(f"share-card bags{of}: {_people(value)}")
            elif key == "bags_unsealed" and isinstance(value, Mapping) and value:
                lines.append(f"bags unsealed{of}: {_people(value)}")
            elif key == "kcv" and isinstance(value, str):
                lines.append(f"check value (KCV){of}: {value}")
            elif key == "components" and isinstance(value, Mapping):
                bags = {c: (v or {}).get("bag_sealed") for c, v in value.items() if isinstance(v, Mapping)}
                if any(bags.values()):
                    lines.append(f"component bags sealed{of}: {_people(bags)}")
            elif isinstance(value, Mapping) and key not in ("attributes", "before", "gates"):
                walk(value, key if key != "keys" else where)

    walk(details, "")
    return lines


def step_result(entry: Mapping[str, Any]) -> list[str]:
    """What a finished step shows: its result and action, then the words to read aloud."""
    lines = [f"  {entry['result']}: {entry['action']}"]
    lines += [f"  read aloud: {line}" for line in read_aloud_lines(entry.get("details") or {})]
    return lines


def done_by(entry: Mapping[str, Any]) -> str:
    """Who did a recorded step: the person who confirmed it, else its actors."""
    details = entry.get("details") or {}
    confirmed = details.get("confirmed_by") if isinstance(details, Mapping) else None
    return str(confirmed) if confirmed else ", ".join(entry.get("actors") or []) or "nobody named"


def recorded_at(entry: Mapping[str, Any]) -> str:
    """A transcript entry's time as the paper record writes it (UTC, to the second)."""
    when = str(entry.get("time", ""))
    return when[:19].replace("T", " ") + " UTC" if when else "an unrecorded time"
