"""Launch `metalayer run | rerun | backfill` as detached processes and keep track of them.

A launch never blocks the Streamlit script: the command starts in its own
session (it outlives a console restart), its output goes to a log file under
``$METALAYER_HOME/logs/console/``, and the page follows the run through
meta.pipeline_runs and meta.task_runs. A launch is refused while a run of one
of its dates is in progress (the date's run lock, or a launch of this console
that has not ended yet); the command itself refuses too (exit 75), which
covers two consoles racing.

Before a launch, ``plan`` lists every date and task it will run, as Luigi would
find them (a task runs when it is not complete, or when a rerun invalidates it),
including earlier extract dates pulled in by the chained silver and gold tasks.
A plan with a missing landing file is refused. A run that pulls in earlier dates
is launched as a backfill from the earliest of them, so each date is its own run.
A running launch can be cancelled: its process group is killed and its runs
and running tasks are recorded as cancelled.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from console.data import fetch
from pipeline.core import db

EXIT_ALREADY_RUNNING = 75


class LaunchRefused(RuntimeError):
    """A run of one of the launch's dates is already in progress."""


@dataclass(frozen=True)
class Action:
    """What to launch: kind 'run' | 'rerun' | 'backfill'."""

    kind: str
    start: date
    end: date | None = None  # backfill only
    target: str = "MasterTask"  # rerun only: a task family, a layer or MasterTask
    downstream: bool = True  # rerun only
    on_missing: str = "stop"  # backfill only

    @property
    def dates(self) -> list[date]:
        last = self.end or self.start
        return [self.start + timedelta(days=n) for n in range((last - self.start).days + 1)]

    def describe(self) -> str:
        if self.kind == "backfill":
            return f"backfill {self.start} .. {self.end} (missing folders: {self.on_missing})"
        if self.kind == "rerun":
            return f"rerun {self.target} for {self.start}" + ("" if self.downstream else " (no downstream)")
        return f"run for {self.start}"

    def command(self, run_id: str | None) -> list[str]:
        base = [sys.executable, "-m", "pipeline.cli"]
        if self.kind == "run":
            return [*base, "run", "--date", self.start.isoformat(), "--trigger", "console", "--run-id", run_id]
        if self.kind == "rerun":
            return [
                *base,
                "rerun",
                self.target,
                "--date",
                self.start.isoformat(),
                "--trigger",
                "console",
                "--run-id",
                run_id,
                *([] if self.downstream else ["--no-downstream"]),
            ]
        if self.kind == "backfill":
            return [
                *base,
                "backfill",
                "--start",
                self.start.isoformat(),
                "--end",
                self.end.isoformat(),
                "--on-missing",
                self.on_missing,
                "--trigger",
                "console",
            ]
        raise ValueError(f"unknown action {self.kind!r}")


@dataclass(frozen=True)
class PlannedTask:
    run_date: date
    task_family: str
    layer: str


@dataclass
class Plan:
    """What a launch will run, and whether it may."""

    action: Action
    tasks: list[PlannedTask]
    missing_files: list[str]  # "<date>/<file>" the plan needs and the landing dir lacks
    no_folder: list[date]  # backfill dates without a landing folder
    landing: Path

    @property
    def dates(self) -> list[date]:
        return sorted({task.run_date for task in self.tasks})

    @property
    def pulled_in(self) -> list[date]:
        """Earlier dates the launch has to build too, that were not asked for."""
        return [day for day in self.dates if day < self.action.start]

    @property
    def refusal(self) -> str | None:
        if self.missing_files:
            return (
                f"landing files missing in {self.landing}: {', '.join(self.missing_files)}. Put the day's "
                "extracts there (or pick another date) and plan again."
            )
        if self.action.kind == "backfill" and self.no_folder and self.action.on_missing == "stop":
            return (
                f"no landing folder for {', '.join(map(str, self.no_folder))}: the backfill would stop there. "
                "Choose to skip dates without a folder, or narrow the range."
            )
        if self.action.kind == "rerun" and self.pulled_in:
            return (
                f"the rerun needs earlier dates that are not built ({', '.join(map(str, self.pulled_in))}): "
                "run those dates first."
            )
        return None

    @property
    def launch_action(self) -> Action:
        """The action to launch: a run or backfill that pulls in earlier dates starts at the earliest of them."""
        if not self.pulled_in or self.action.kind == "rerun":
            return self.action
        return Action("backfill", start=self.pulled_in[0], end=self.action.end or self.action.start, on_missing="skip")


def plan(action: Action, landing: str | Path | None = None) -> Plan:
    """Every date and task the action will run, walking MasterTask's requirements as Luigi does."""
    import luigi

    from pipeline.base import WarehouseTask
    from pipeline.core.config import landing_dir
    from pipeline.master import MasterTask
    from pipeline.operations.maintenance import layer_of, select_tasks
    from pipeline.tasks_bronze import LandingFile

    folder = Path(landing).resolve() if landing else landing_dir()
    invalidated = []
    if action.kind == "rerun":
        invalidated = select_tasks(action.target, action.start, folder, downstream=action.downstream)
    forced = {task.task_id for task in invalidated}
    dates = action.dates
    no_folder = [day for day in dates if not (folder / day.isoformat()).is_dir()]
    if action.kind == "backfill":
        dates = [day for day in dates if day not in no_folder]
    seen: set[str] = set()
    tasks: list[PlannedTask] = []
    missing: list[str] = []

    def visit(task: luigi.Task) -> None:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        if isinstance(task, LandingFile):
            if not task.complete():
                missing.append(f"{task.date}/{Path(task.output().path).name}")
            return
        if task.task_id not in forced and task.complete():
            return
        for dep in luigi.task.flatten(task.requires()):
            visit(dep)
        if isinstance(task, WarehouseTask):
            tasks.append(PlannedTask(task.date, task.task_family, layer_of(task)))

    # The rerun builds its invalidated tasks as well as MasterTask (one may sit under complete ones).
    for root in [*(MasterTask(date=day, landing_dir=str(folder)) for day in dates), *invalidated]:
        visit(root)
    planned = Plan(action=action, tasks=tasks, missing_files=missing, no_folder=no_folder, landing=folder)
    if planned.pulled_in and action.kind != "rerun" and planned.launch_action != action:
        # Launched as a backfill from the earliest pulled-in date: every task of those dates runs.
        widened = plan(planned.launch_action, folder)
        planned = Plan(
            action=action, tasks=widened.tasks, missing_files=widened.missing_files, no_folder=no_folder, landing=folder
        )
    return planned


@dataclass
class Launch:
    launch_id: str
    action: Action
    run_id: str | None  # None for a backfill: one run per date, followed by trigger and time
    command: list[str]
    log_path: Path
    started_at: datetime
    process: subprocess.Popen = field(repr=False)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def output_tail(self, max_bytes: int = 20_000) -> str:
        return tail(self.log_path, max_bytes)

    cancelled_at: datetime | None = None
    cancelled_runs: list[str] = field(default_factory=list)  # the runs recorded as cancelled


def tail(path: Path, max_bytes: int = 20_000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return text if size <= max_bytes else "…" + text.split("\n", 1)[-1]


class Launcher:
    """The launches of this console process (shared by all its sessions)."""

    def __init__(self) -> None:
        self._launches: dict[str, Launch] = {}
        self._lock = threading.Lock()

    def get(self, launch_id: str) -> Launch | None:
        return self._launches.get(launch_id)

    def active_for(self, dates: list[date]) -> Launch | None:
        wanted = set(dates)
        for launch in list(self._launches.values()):
            if launch.alive and wanted & set(launch.action.dates):
                return launch
        return None

    def cancel(self, launch_id: str, url: str, *, grace_seconds: float = 10) -> list[str]:
        """Kill a launch's process group (TERM, then KILL after the grace period) and record its runs as
        cancelled: the run rows it left unfinished or failed, and their running tasks. Returns those run ids."""
        launched = self._launches[launch_id]
        if launched.alive:
            try:
                os.killpg(launched.process.pid, signal.SIGTERM)  # its own session: the command and its workers
                launched.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(launched.process.pid, signal.SIGKILL)
                launched.process.wait()
            except ProcessLookupError:
                pass
        launched.cancelled_at = datetime.now(UTC)
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute(
                db.sql_text("console/cancel_launch.sql"),
                {
                    "run_id": launched.run_id,
                    "since": launched.started_at,
                    "start": launched.action.start,
                    "end": launched.action.end or launched.action.start,
                    "error": f"cancelled from the console at {launched.cancelled_at:%Y-%m-%d %H:%M:%S} UTC",
                },
            )
            launched.cancelled_runs = [row[0] for row in cur.fetchall()]
        return launched.cancelled_runs

    def launch(self, action: Action, url: str, landing: str | Path | None = None) -> Launch:
        """Launch the action (after checking its plan: a plan missing landing files is refused)."""
        from pipeline.core.runs import new_run_id

        planned = plan(action, landing)
        if planned.refusal:
            raise LaunchRefused(planned.refusal)
        action = planned.launch_action
        with self._lock:  # two sessions clicking at once: one launches, the other is refused
            busy = self.active_for(action.dates)
            if busy:
                raise LaunchRefused(
                    f"{busy.action.describe()} launched from this console at "
                    f"{busy.started_at:%H:%M:%S} UTC is still running; wait for it to end."
                )
            running = running_dates(action.dates, url)
            if running:
                day, holder = running[0]
                who = holder.get("run_id") or "another process"
                raise LaunchRefused(
                    f"a run for {day} is already in progress ({who}, trigger "
                    f"{holder.get('trigger') or 'unknown'}); wait for it to end."
                )
            run_id = None if action.kind == "backfill" else new_run_id(action.start)
            launch_id = run_id or f"backfill-{action.start}-{action.end}-{secrets.token_hex(3)}"
            log_path = db.metalayer_home() / "logs" / "console" / f"{launch_id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            command = action.command(run_id)
            env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
            with log_path.open("ab") as log_file:
                process = subprocess.Popen(  # noqa: S603 - fixed argv built above, no shell
                    command,
                    cwd=db.REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            launch = Launch(
                launch_id=launch_id,
                action=action,
                run_id=run_id,
                command=command,
                log_path=log_path,
                started_at=datetime.now(UTC),
                process=process,
            )
            self._launches[launch_id] = launch
            return launch


def running_dates(dates: list[date], url: str) -> list[tuple[date, dict]]:
    """Dates of the list a run is in progress for: rows marked running, confirmed by the date's run lock."""
    from pipeline.operations.maintenance import is_running  # loads the task graph: only when launching

    marked = fetch("running_dates", start=min(dates), end=max(dates))
    found = []
    for day in marked["run_date"].tolist():
        holder = is_running(day, url)
        if holder is not None:
            found.append((day, holder))
    return found


LAUNCHER = Launcher()
