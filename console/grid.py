"""The date x task grid: each extract date's state per task family, and whether the date is delivered.

A cell is the task's latest attempt for the date (meta.task_runs: success,
skipped, failed, running, cancelled), or, when it never ran, what the task graph
says about it: ``missing`` (a bronze task whose landing file is not there),
``blocked`` (something it needs, on this date or, for a chained task, on the
previous extract date, failed, is missing or is itself blocked) or ``not run``.
A date is delivered when every cell is done; otherwise its root cause is the
first failed task in graph order, else its missing files, else what stops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from console.graph import LAYERS, TaskGraph

DONE = ("success", "skipped")
BAD = ("failed", "blocked", "missing", "cancelled")
NOT_RUN = "not run"
# What a cell shows: a symbol readable without colour, then the status.
SYMBOLS = {
    "success": "✓",
    "skipped": "✓",
    "failed": "✗",
    "running": "…",
    "cancelled": "■",
    "blocked": "⊘",
    "missing": "∅",
    NOT_RUN: "·",
}
COLOURS = {
    "success": "#c8e6c9",
    "skipped": "#e0e0e0",
    "failed": "#ffcdd2",
    "running": "#bbdefb",
    "cancelled": "#ffe0b2",
    "blocked": "#f3e5f5",
    "missing": "#fff3e0",
    NOT_RUN: "#ffffff",
}


@dataclass(frozen=True)
class Cell:
    status: str
    run_id: str | None = None
    error: str | None = None
    cause: str | None = None  # blocked: the upstream that stops it ("FactSales" or "2026-11-20 SilverCustomers")
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class DateState:
    run_date: date
    cells: dict[str, Cell]
    missing_files: list[str] = field(default_factory=list)
    landing: Path | None = None
    run_id: str | None = None  # the date's latest run
    run_status: str | None = None

    @property
    def delivered(self) -> bool:
        return all(cell.status in DONE for cell in self.cells.values())

    @property
    def done(self) -> int:
        return sum(cell.status in DONE for cell in self.cells.values())

    @property
    def failed_family(self) -> str | None:
        return next((family for family, cell in self.cells.items() if cell.status == "failed"), None)

    @property
    def state(self) -> str:
        """delivered | failed | missing | cancelled | running | blocked | not run."""
        if self.delivered:
            return "delivered"
        statuses = {cell.status for cell in self.cells.values()}
        for state in ("running", "failed", "missing", "cancelled", "blocked"):
            if state in statuses:
                return state
        return NOT_RUN

    def cause(self) -> str:
        """Why the date is not delivered, root cause first (one line, then what to do when recorded)."""
        family = self.failed_family
        if self.state == "running":
            return "a run is in progress"
        if family:
            return f"{family} failed: {self.cells[family].error or 'no error recorded'}"
        if self.missing_files:
            where = f" in {self.landing}" if self.landing else ""
            return (
                f"landing file(s) missing{where}: {', '.join(self.missing_files)}\n"
                "What to do: put the day's extracts into the landing folder, then run this date."
            )
        cancelled = next((f for f, cell in self.cells.items() if cell.status == "cancelled"), None)
        if cancelled:
            return f"the run was cancelled while {cancelled} ran"
        blocked = next((cell for cell in self.cells.values() if cell.status == "blocked"), None)
        if blocked:
            return f"blocked by {blocked.cause}, which is not done"
        return "not run yet"

    def files_changed_since(self, moment: datetime | None) -> bool:
        """Whether a landing file of the date was written after `moment` (the failure): a fix may be in."""
        if moment is None or self.landing is None:
            return False
        folder = self.landing / self.run_date.isoformat()
        if not folder.is_dir():
            return False
        stamp = moment.timestamp()
        return any(path.stat().st_mtime > stamp for path in folder.iterdir() if path.is_file())


def family_order(graph: TaskGraph) -> list[str]:
    """Task families upstream first: by layer, then by dependency depth, then by name."""
    families = graph.task_families
    depth: dict[str, int] = {}

    def level(family: str) -> int:
        if family not in depth:
            depth[family] = 1 + max(
                (level(up) for up, down in graph.edges if down == family and up in families), default=-1
            )
        return depth[family]

    layer = {family: LAYERS.index(graph.nodes[family].layer) for family in families}
    return sorted(families, key=lambda family: (layer[family], level(family), family))


def landing_files(graph: TaskGraph, landing: Path | None, run_date: date) -> dict[str, tuple[str, bool]]:
    """Landing node key -> (file name, exists) for the date."""
    from pipeline.core.landing import landing_file
    from pipeline.core.sources import SOURCES

    found = {}
    for key, node in graph.nodes.items():
        if node.layer != "landing":
            continue
        source = SOURCES[key.removeprefix("file:")]
        path = landing_file(landing, run_date, source) if landing else None
        found[key] = (path.name if path else node.label, bool(path and path.is_file()))
    return found


def build(
    graph: TaskGraph,
    attempts: pd.DataFrame,
    date_runs: pd.DataFrame,
    default_landing: Path | None,
    extract_dates: list[date],
) -> list[DateState]:
    """The grid, oldest date first: every extract date in the landing dir or with a recorded run."""
    order = family_order(graph)
    runs = {row.run_date: row for row in date_runs.itertuples()}
    by_date: dict[date, dict[str, object]] = {}
    for row in attempts.itertuples():
        by_date.setdefault(row.run_date, {})[row.task_family] = row
    dates = sorted(set(extract_dates) | set(runs) | set(by_date))
    upstream = {family: sorted(up for up, down in graph.edges if down == family) for family in order}
    states: list[DateState] = []
    for index, run_date in enumerate(dates):
        run = runs.get(run_date)
        landing = default_landing
        if run is not None and isinstance(run.landing_dir, str) and (Path(run.landing_dir) / str(run_date)).is_dir():
            landing = Path(run.landing_dir)
        files = landing_files(graph, landing, run_date)
        previous = states[index - 1] if index else None
        cells: dict[str, Cell] = {}
        for family in order:
            attempt = by_date.get(run_date, {}).get(family)
            if attempt is not None:
                cells[family] = Cell(
                    status=attempt.status,
                    run_id=attempt.run_id,
                    error=attempt.error if isinstance(attempt.error, str) else None,
                    started_at=attempt.started_at,
                    finished_at=_value(attempt.finished_at),
                )
                continue
            missing = [files[up][0] for up in upstream[family] if up in files and not files[up][1]]
            if missing:
                cells[family] = Cell(status="missing", cause=", ".join(missing))
                continue
            stopper = next((up for up in upstream[family] if up in cells and cells[up].status in BAD), None)
            if (
                stopper is None
                and family in graph.chained
                and previous is not None
                and previous.cells[family].status in BAD
            ):
                stopper = f"{previous.run_date} {family}"
            cells[family] = Cell(status="blocked", cause=stopper) if stopper else Cell(status=NOT_RUN)
        states.append(
            DateState(
                run_date=run_date,
                cells=cells,
                landing=landing,
                missing_files=sorted(name for name, exists in files.values() if not exists),
                run_id=run.run_id if run is not None else None,
                run_status=run.status if run is not None else None,
            )
        )
    return states


def _value(value):
    return None if value is None or value is pd.NaT or (isinstance(value, float) and value != value) else value


def to_frame(states: list[DateState], order: list[str]) -> pd.DataFrame:
    """One row per date (newest first), one column per family: the cell's symbol and status."""
    rows = []
    for state in reversed(states):
        row = {
            "extract_date": state.run_date,
            "state": f"{state.done} of {len(state.cells)} done" if not state.delivered else "delivered",
        }
        for family in order:
            status = state.cells[family].status
            row[family] = f"{SYMBOLS.get(status, '?')} {status}"
        rows.append(row)
    return pd.DataFrame(rows, columns=["extract_date", "state", *order])


def not_delivered(states: list[DateState]) -> list[DateState]:
    return [state for state in states if not state.delivered]
