"""Opening a ceremony: every ceremony type in one table, the live workspace or its rehearsal area, begin and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ceremony.errors import InputError
from ceremony.model.ceremony_file import (
    approvals,
    load_ceremony,
    preflight,
    require_approvals,
)
from ceremony.model.config import data_dir
from ceremony.model.people import default_register, load_register
from ceremony.model.policy import load_policy
from ceremony.procedures import display
from ceremony.procedures.asymmetric import IssuingCA, KeyBackup, KeyDestruction, KeyRestore, RootCA, TokenInit
from ceremony.procedures.base import Outcome, Procedure
from ceremony.procedures.compromise import CaRevocation
from ceremony.procedures.consoles import Console, kernel_console
from ceremony.procedures.generations import IssuingRenewal, RootRollover
from ceremony.procedures.pins import PinChange, UserPinReset
from ceremony.procedures.rewrap import BackupRewrap
from ceremony.procedures.symmetric import KeyRotation, SymmetricKeys
from ceremony.record.workspace import Workspace, default_workspace, init_workspace

#: Every ceremony type the workbench runs, by the ``type`` its file names.
PROCEDURES: dict[str, type[Procedure]] = {
    p.TYPE: p
    for p in (
        TokenInit,
        RootCA,
        IssuingCA,
        KeyBackup,
        KeyRestore,
        KeyDestruction,
        BackupRewrap,
        SymmetricKeys,
        KeyRotation,
        PinChange,
        UserPinReset,
        IssuingRenewal,
        RootRollover,
        CaRevocation,
    )  # fmt: skip
}


# --- opening a ceremony -------------------------------------------------------------------------
def rehearsal_area(live: Workspace) -> Workspace:
    """The rehearsal area of ``live``: its own workspace and throwaway token, created on first use."""
    area = live.rehearsal_dir
    if (area / "workspace.yaml").exists():
        return Workspace.open(area)
    ws = init_workspace(
        area,
        key_store=live.config.key_store.kind,
        token_label=live.token_label or "rehearsal",
        initialise_token=False,
        purpose="rehearsal",
    )
    return ws


def begin(
    ceremony_file: str | Path | None = None,
    workspace: str | Path | None = None,
    *,
    rehearsal: bool = False,
    register: str | Path | None = None,
    console: Console | None = None,
    expect: str | None = None,
) -> Procedure:
    """Open a ceremony: load and pre-flight the file, check approvals, pick the live workspace or
    the rehearsal area, and write the transcript's first entry.

    A live run refuses a file without the policy's approvals; a rehearsal runs anyway and says so.
    In a notebook kernel, every ceremony error from here on shows as one line naming the step (no traceback).
    """
    display.install_error_display()
    if ceremony_file is None:
        if expect is None:
            raise InputError("give the ceremony file")
        ceremony_file = data_dir() / "ceremonies" / f"{expect}.yaml"
    ceremony = load_ceremony(Path(ceremony_file))
    kind = ceremony.spec.type  # type: ignore[attr-defined]
    if expect is not None and kind != expect:
        raise InputError(f"{ceremony.path}: type: this procedure runs {expect} ceremonies, not {kind}")
    live = Workspace.open(Path(workspace) if workspace is not None else default_workspace())
    policy = load_policy()
    try:
        preflight(ceremony, load_register(Path(register) if register else default_register(live.root)), policy)
    except BaseException:
        live.close()
        raise
    approved_by = approvals(live.journal.entries(), ceremony.sha256)
    if not rehearsal:
        require_approvals(ceremony, approved_by, policy, rehearsal=False)
    ws = rehearsal_area(live) if rehearsal else live
    if ws is not live:
        live.close()
    procedure = PROCEDURES[kind](
        ceremony,
        ws,
        rehearsal=rehearsal,
        console=console or kernel_console(ws),
        approved_by=approved_by,
        policy=policy,
    )
    procedure.start()
    return procedure


def run(
    ceremony_file: str | Path,
    workspace: str | Path | None = None,
    *,
    rehearsal: bool = False,
    register: str | Path | None = None,
    console: Console | None = None,
) -> Outcome:
    """Run a whole ceremony (every step, then the seal); the transcript survives an interruption."""
    procedure = begin(ceremony_file, workspace, rehearsal=rehearsal, register=register, console=console)
    try:
        return procedure.run()
    finally:
        procedure.ws.close()


def _runner(kind: str) -> Any:
    def run_kind(ceremony_file: str | Path | None = None, workspace: str | Path | None = None, **kw: Any) -> Outcome:
        procedure = begin(ceremony_file, workspace, expect=kind, **kw)
        try:
            return procedure.run()
        finally:
            procedure.ws.close()

    run_kind.__name__ = kind.replace("-", "_")
    run_kind.__doc__ = f"Run a {kind} ceremony from its file (every step, then the seal)."
    return run_kind


#: One function per ceremony type, for the CLI and scripts.
token_init = _runner("token-init")


root_ca = _runner("root-ca")


issuing_ca = _runner("issuing-ca")


key_backup = _runner("key-backup")


key_restore = _runner("key-restore")


key_destruction = _runner("key-destruction")


symmetric_keys = _runner("symmetric-key")


key_rotation = _runner("key-rotation")


ca_revocation = _runner("ca-revocation")
