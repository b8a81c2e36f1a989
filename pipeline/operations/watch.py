"""The landing watcher: run each extract date once, as soon as its folder is complete.

A date folder is complete when it holds a `_SUCCESS` file (the producer says
so: run at once), or when every file-kind source of the contract (sources.toml
`kind`, pipeline.core.sources) has its file and no file in the folder has changed
in size or modification time for `quiet_seconds`. The same rule, without the
watcher's memory of earlier polls, is LandingReady's (pipeline/tasks_bronze.py)
for plain `luigi` runs.

`metalayer watch` polls the landing dir, runs each complete date through
runner.run_pipeline (trigger 'watch') and records the outcome in
meta.watched_dates: a date that succeeded, or that a run of any trigger
delivered before, is never run again; a failed date is run again only when its
folder's files change.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.core import db
from pipeline.core.landing import SUCCESS_FILE, Readiness, readiness
from pipeline.core.runs import RunAlreadyRunning


class FolderTracker:
    """The watcher's memory of each folder: since when its files have been as they are.

    A copy that keeps old modification times (cp -p, rsync -t) looks quiet by its mtimes at once;
    the folder must also stay unchanged, as this process sees it, for the quiet period.
    """

    def __init__(self, quiet_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.quiet_seconds = quiet_seconds
        self.clock = clock
        self.seen: dict[date, tuple[str, float]] = {}

    def check(self, day: date, folder: Path) -> Readiness:
        state = readiness(folder, self.quiet_seconds)
        now = self.clock()
        folder_fingerprint, since = self.seen.get(day, (None, now))
        if folder_fingerprint != state.fingerprint:
            since = now
        self.seen[day] = (state.fingerprint, since)
        if state.ready and not state.has_marker and now - since < self.quiet_seconds:
            return Readiness(
                False,
                f"changed {now - since:.1f}s ago, quiet period {self.quiet_seconds:g}s",
                state.fingerprint,
                stage="settling",
            )
        return state


# ---------------------------------------------------------------- what was decided (meta.watched_dates)


@dataclass(frozen=True)
class Decision:
    status: str  # success | failed | delivered_before
    fingerprint: str
    run_id: str | None


def decision(url: str, day: date) -> Decision | None:
    """What was decided for the date; a date a run of any trigger delivered before counts as done."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select status, folder_fingerprint, run_id from meta.watched_dates where extract_date = %s", (day,))
        row = cur.fetchone()
        if row:
            return Decision(*row)
        cur.execute(
            "select run_id from meta.pipeline_runs where run_date = %s and status = 'success' "
            "order by finished_at desc limit 1",
            (day,),
        )
        delivered = cur.fetchone()
    return Decision("delivered_before", "", delivered[0]) if delivered else None


def record(url: str, day: date, landing: Path, folder_fingerprint: str, run_id: str | None, status: str) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.watched_dates (extract_date, landing_dir, folder_fingerprint, run_id, status)
                       values (%s, %s, %s, %s, %s)
                       on conflict (extract_date) do update
                       set landing_dir = excluded.landing_dir, folder_fingerprint = excluded.folder_fingerprint,
                           run_id = excluded.run_id, status = excluded.status, decided_at = now()""",
            (day, str(landing), folder_fingerprint, run_id, status),
        )


# ---------------------------------------------------------------- the loop


def heartbeat_file() -> Path:
    return db.metalayer_home() / "run" / "watch.alive"


class Watcher:
    def __init__(
        self,
        landing: Path,
        *,
        quiet_seconds: float,
        poll_seconds: float,
        workers: int = 1,
        scheduler_url: str | None = None,
        printer: Callable[[str], None] = print,
    ):
        self.landing = landing
        self.quiet_seconds = quiet_seconds
        self.poll_seconds = poll_seconds
        self.workers = workers
        self.scheduler_url = scheduler_url
        self.printer = printer
        self.tracker = FolderTracker(quiet_seconds)
        self.stop = threading.Event()
        self._said: dict[date, str] = {}
        self.done: set[date] = set()  # dates run or delivered: never looked at again

    def say(self, message: str) -> None:
        self.printer(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}")

    def _once_per_state(self, day: date, stage: str, message: str) -> None:
        if self._said.get(day) != stage:
            self._said[day] = stage
            self.say(f"{day}: {message}")

    def poll(self, url: str) -> list[tuple[date, str]]:
        """Look at every date folder once; run the complete ones not run before. Returns (date, status) run."""
        from pipeline.core.landing import extract_dates

        ran = []
        for day in extract_dates(self.landing):
            if self.stop.is_set():
                break
            if day in self.done:
                continue
            known = decision(url, day)
            if known and known.status in ("success", "delivered_before"):
                if known.status == "delivered_before":
                    record(url, day, self.landing, known.fingerprint, known.run_id, known.status)
                    self.say(f"{day}: delivered before by run {known.run_id}; not run again")
                self.done.add(day)
                continue
            state = self.tracker.check(day, self.landing / day.isoformat())
            if not state.ready:
                self._once_per_state(
                    day, f"{state.stage}: {state.reason}" if state.stage == "missing" else state.stage, state.reason
                )
                continue
            if known and known.status == "failed" and known.fingerprint == state.fingerprint:
                self._once_per_state(day, "failed", "failed before; run again when its files change")
                continue
            ran.append((day, self.run(url, day, state)))
        return ran

    def run(self, url: str, day: date, state: Readiness) -> str:
        from pipeline.operations.runner import print_summary, run_pipeline

        self.say(f"{day}: complete ({state.reason}); running")
        try:
            result = run_pipeline(
                day,
                landing=self.landing,
                workers=self.workers,
                scheduler_url=self.scheduler_url,
                trigger="watch",
                printer=self.printer,
            )
        except RunAlreadyRunning as busy:
            self.say(f"{day}: {busy}; looked at again next poll")
            return "busy"
        print_summary(result)
        record(url, day, self.landing, state.fingerprint, result.run_id, result.status)
        self.say(f"{day}: {result.status} (run {result.run_id}, {result.seconds:.1f}s)")
        self._said.pop(day, None)
        if result.success:
            self.done.add(day)
        return result.status

    def _beat(self) -> None:
        path = heartbeat_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        while not self.stop.is_set():
            path.touch()
            self.stop.wait(self.poll_seconds)

    def serve(self) -> int:
        url = db.Warehouse.from_environment().ready().url
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop.set())
        threading.Thread(target=self._beat, name="watch-heartbeat", daemon=True).start()
        self.say(
            f"watching {self.landing}: a date runs when it has {SUCCESS_FILE}, or every contract file "
            f"unchanged for {self.quiet_seconds:g}s; polling every {self.poll_seconds:g}s"
        )
        while not self.stop.is_set():
            self.poll(url)
            self.stop.wait(self.poll_seconds)
        self.say("stopped")
        return 0
