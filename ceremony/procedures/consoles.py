"""Who is at the keyboard during a ceremony: people in JupyterLab (attended), or nobody (papermill).

An attended console waits at each gate for a permitted person to type their id and lets each
custodian type their share (never echoed). An unattended one confirms nothing (participants
attest afterwards by signing the sealed transcript) and reads shares deposited in ``secrets/``.
"""

from __future__ import annotations

import getpass
import os
import sys
import warnings
from pathlib import Path
from typing import Protocol

from ceremony.keys.custody import CustodyError, deposited, read_share_card
from ceremony.record.workspace import Workspace


class Console(Protocol):
    """How a procedure talks to the people in the room."""

    attended: bool

    def confirm(self, gate: str, text: str, allowed: list[str]) -> str | None:
        """Wait for one of ``allowed`` to confirm ``text``; returns their id (None: unattended)."""
        ...

    def present_shares(self, purpose: str, custodians: list[str], m: int) -> list[tuple[str, str]]:
        """(custodian, words) for at least m shares of ``purpose``."""
        ...

    def reenter_share(self, custodian: str, card: Path) -> str:
        """The custodian types their share back in (to confirm it, revealing nothing)."""
        ...

    def reenter_component(self, custodian: str, card: Path) -> str:
        """The custodian types their key component back in from the card (checked by its KCV)."""
        ...

    def present_component(self, key_label: str, custodian: str) -> str:
        """The custodian enters their component of ``key_label`` at the token."""
        ...

    def show(self, text: str) -> None: ...


class Unattended:
    """Papermill and CLI runs: nobody confirms at the keyboard; shares come from ``secrets/``.

    Attestations are collected afterwards by signing the sealed transcript.
    """

    attended = False

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def confirm(self, gate: str, text: str, allowed: list[str]) -> str | None:
        return None

    def present_shares(self, purpose: str, custodians: list[str], m: int) -> list[tuple[str, str]]:
        directory = self.ws.shares_dir(purpose)
        shares = deposited(directory) if directory.is_dir() else []
        if not shares:
            raise CustodyError(
                f"no {purpose} shares deposited in {directory} for an unattended run; "
                "the custodians present them in an attended run"
            )
        return shares

    def reenter_share(self, custodian: str, card: Path) -> str:
        # Unattended: the card as written stands in for the custodian typing it back.
        return read_share_card(card)

    def reenter_component(self, custodian: str, card: Path) -> str:
        from ceremony.keys.symmetric import read_component_card

        return read_component_card(card).hex()

    def present_component(self, key_label: str, custodian: str) -> str:
        path = self.ws.secrets_dir / "components" / key_label / f"{custodian}.component"
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise CustodyError(
                f"no component of {key_label} from {custodian} in {path.parent} for an unattended run"
            ) from None

    def show(self, text: str) -> None:
        print(text)


def _hidden(prompt: str) -> str:
    """A secret typed at the console, never echoed. In JupyterLab the kernel's password box answers; at a
    terminal, getpass; with standard input piped (a scripted rehearsal), the line as given, without
    getpass's warning that it cannot hide what nobody sees."""
    if getpass.getpass.__module__ == "getpass" and not sys.stdin.isatty():
        print(prompt, file=sys.stderr, flush=True)
        return sys.stdin.readline().rstrip("\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getpass.GetPassWarning)
        return getpass.getpass(prompt)


class Attended:
    """JupyterLab or a terminal: every gate waits for a person to confirm by typing their id."""

    attended = True

    def confirm(self, gate: str, text: str, allowed: list[str]) -> str | None:
        while True:
            who = input(f"[{gate}] {text}\n  confirm by typing your person id ({', '.join(allowed)}): ").strip()
            if who in allowed:
                return who
            print(f"  {who!r} may not confirm this step")

    def present_shares(self, purpose: str, custodians: list[str], m: int) -> list[tuple[str, str]]:
        presented: list[tuple[str, str]] = []
        while len(presented) < m:
            who = input(f"[{purpose}] custodian {len(presented) + 1} of {m}, your person id: ").strip()
            if who not in custodians or who in [c for c, _ in presented]:
                print(f"  {who!r} is not a custodian of this ceremony, or has already presented a share")
                continue
            presented.append((who, _hidden(f"  {who}, type your share words (not shown): ")))
        return presented

    def reenter_share(self, custodian: str, card: Path) -> str:
        return _hidden(f"  {custodian}, type your share back in from your card (not shown): ")

    def reenter_component(self, custodian: str, card: Path) -> str:
        return _hidden(f"  {custodian}, type your component back in from your card (not shown): ")

    def present_component(self, key_label: str, custodian: str) -> str:
        return _hidden(f"[{key_label}] {custodian}, type your component (hex, not shown): ")

    def show(self, text: str) -> None:
        print(text)


def kernel_console(ws: Workspace) -> Console:
    """Attended when the kernel's client can answer ``input()`` (JupyterLab), else unattended (papermill)."""
    if os.environ.get("CEREMONY_UNATTENDED"):
        return Unattended(ws)
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
    except ImportError:
        kernel = None
    return Attended() if kernel is not None and getattr(kernel, "_allow_stdin", False) else Unattended(ws)
