"""Launch `metalayer run | rerun | backfill` as detached processes and keep track of them.

A launch never blocks the Streamlit script: the command starts in its own
session (it outlives a console restart), its output goes to a log file under
``$METALAYER_HOME/logs/console/``, and the page follows the run through
meta.pipeline_runs and meta.task_runs. A launch is refused while a run of one
of its dates is in progress (the date's run lock, or a launch of this console
that has not ended yet); the command itself refuses too (exit 75), which
covers two consoles racing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from console.data import fetch
from pipeline import db

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
            return [*base, "rerun", self.target, "--date", self.start.isoformat(), "--trigger", "console",
                    "--run-id", run_id, *([] if self.downstream else ["--no-downstream"])]
        if self.kind == "backfill":
            return [*base, "backfill", "--start", self.start.isoformat(), "--end", self.end.isoformat(),
                    "--on-missing", self.on_missing, "--trigger", "console"]
        raise ValueError(f"unknown action {self.kind!r}")


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

    def launch(self, action: Action, url: str) -> Launch:
        from pipeline.runs import new_run_id

        with self._lock:  # two sessions clicking at once: one launches, the other is refused
            busy = self.active_for(action.dates)
            if busy:
                raise LaunchRefused(f"{busy.action.describe()} launched from this console at "
                                    f"{busy.started_at:%H:%M:%S} UTC is still running; wait for it to end.")
            running = running_dates(action.dates, url)
            if running:
                day, holder = running[0]
                who = holder.get("run_id") or "another process"
                raise LaunchRefused(f"a run for {day} is already in progress ({who}, trigger "
                                    f"{holder.get('trigger') or 'unknown'}); wait for it to end.")
            run_id = None if action.kind == "backfill" else new_run_id(action.start)
            launch_id = run_id or f"backfill-{action.start}-{action.end}-{secrets.token_hex(3)}"
            log_path = db.metalayer_home() / "logs" / "console" / f"{launch_id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            command = action.command(run_id)
            env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
            with log_path.open("ab") as log_file:
                process = subprocess.Popen(  # noqa: S603 - fixed argv built above, no shell
                    command, cwd=db.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
            launch = Launch(launch_id=launch_id, action=action, run_id=run_id, command=command, log_path=log_path,
                            started_at=datetime.now(UTC), process=process)
            self._launches[launch_id] = launch
            return launch


def running_dates(dates: list[date], url: str) -> list[tuple[date, dict]]:
    """Dates of the list a run is in progress for: rows marked running, confirmed by the date's run lock."""
    from pipeline.ops import is_running  # loads the task graph: only when launching

    marked = fetch("running_dates", start=min(dates), end=max(dates))
    found = []
    for day in marked["run_date"].tolist():
        holder = is_running(day, url)
        if holder is not None:
            found.append((day, holder))
    return found


LAUNCHER = Launcher()
