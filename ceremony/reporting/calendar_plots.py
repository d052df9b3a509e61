"""The calendar of what falls due as notebook 70 shows it: a timeline (a write-once PNG) and its table."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from ceremony.compliance.calendar import KINDS, Calendar, parse_until, workspace_calendar
from ceremony.compliance.sources import Evidence
from ceremony.record.workspace import Workspace, default_workspace
from ceremony.reporting.cells import Shown
from ceremony.reporting.inventory_plots import Explorer, new_figure, save_png

#: Marker colours by status: what is overdue stands out.
COLOURS = {"overdue": "tab:red", "due soon": "tab:orange", "later": "tab:blue"}
COLUMNS = ["date", "status", "kind", "subject", "source", "detail"]


def calendar_of(workspace: str | Path | None, x: Explorer, until: str | date | None = None) -> Calendar:
    """The workspace's calendar as of the explorer's date, up to ``until`` (``YYYY-MM-DD``; default: a year on)."""
    text = until.isoformat() if isinstance(until, date) else (until or None)
    ws = Workspace.open(Path(workspace) if workspace else default_workspace())
    try:
        ev = Evidence(ws, as_of=x.as_of)
        return workspace_calendar(ev, parse_until(text, ev.as_of))
    finally:
        ws.close()


def calendar_table(cal: Calendar) -> pd.DataFrame:
    """One row per item, by date: its status, kind (in words), subject, source and detail."""
    rows = [[i.date, i.status, KINDS[i.kind], i.subject, i.source, i.detail] for i in cal.items]
    return pd.DataFrame(rows, columns=COLUMNS)


def calendar_png(cal: Calendar, path: Path) -> Path:
    """A timeline: one lane per kind of item, each item a marker coloured by its status and labelled with its
    subject; a line at the as-of date."""
    import matplotlib.dates

    kinds = [k for k in KINDS if any(i.kind == k for i in cal.items)]
    fig, ax = new_figure(10, 1.2 + 0.45 * max(len(kinds), 1))
    for status, colour in COLOURS.items():
        shown = [i for i in cal.items if i.status == status]
        ax.scatter([i.date for i in shown], [kinds.index(i.kind) for i in shown], color=colour, label=status, zorder=3)
    labels: dict[tuple[date, str], list[str]] = {}
    for i in cal.items:  # items on one day in one lane share one label
        labels.setdefault((i.date, i.kind), []).append(i.subject)
    for (day, kind), subjects in labels.items():
        ax.annotate(", ".join(subjects), (day, kinds.index(kind)), xytext=(3, 4), textcoords="offset points",
                    fontsize=6, rotation=20)  # fmt: skip
    ax.axvline(cal.as_of.date(), color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(kinds)), [KINDS[k] for k in kinds])
    ax.set_ylim(-0.7, max(len(kinds), 1) - 0.3)
    first = min([cal.as_of.date(), *(i.date for i in cal.items)])
    ax.set_xlim(first - timedelta(days=15), max(cal.until, first) + timedelta(days=45))  # room for the last label
    locator = matplotlib.dates.AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call,unused-ignore]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call,unused-ignore]
    ax.set_title(f"What falls due, as of {cal.as_of:%Y-%m-%d} until {cal.until}")
    if cal.items:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return save_png(fig, path)


def draw_calendar(workspace: str | Path | None, x: Explorer, until: str | date | None = None) -> Shown:
    """``calendar.png``: the timeline of what falls due, with its table, and what is not on it."""
    cal = calendar_of(workspace, x, until)
    png = calendar_png(cal, x.out / "calendar.png")
    overdue = f"**{len(cal.overdue)} overdue**" if cal.overdue else "nothing overdue"
    gaps = [f"Not on the calendar: {gap}" for gap in cal.gaps]
    return Shown((png, f"saved `{png}`; {len(cal.items)} items, {overdue}", calendar_table(cal), *gaps))
