"""Run bookkeeping: one meta.pipeline_runs row per run of the graph."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pipeline.core import db

TRIGGERS = ("cli", "cron", "console", "backfill", "test", "watch")


def new_run_id(run_date: date) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{run_date.isoformat()}-{stamp}-{secrets.token_hex(3)}"


_process_run_id: str | None = None
# The process that minted _process_run_id: a plain `luigi` command's own process. Luigi's worker
# processes are its forks and inherit both; bookkeeping names the command, not a worker.
_process_run_owner: int | None = None


def process_run_id(run_date: date | None = None) -> str:
    """The run id of a plain `luigi --module pipeline ...` invocation (no run id passed).

    Created once per process (MasterTask.complete mints it in the `luigi` command's
    own process, before Luigi forks workers); worker processes forked by Luigi
    inherit it, or take METALAYER_RUN_ID from the environment when set.
    """
    global _process_run_id, _process_run_owner
    if _process_run_id is None:
        _process_run_id = os.environ.get("METALAYER_RUN_ID") or new_run_id(run_date or date.today())
        _process_run_owner = os.getpid()
    return _process_run_id


def start_run(
    url: str,
    run_date: date,
    trigger: str,
    *,
    run_id: str | None = None,
    landing_dir: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    log_file: str | None = None,
) -> str:
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; expected one of {', '.join(TRIGGERS)}")
    run_id = run_id or new_run_id(run_date)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.pipeline_runs (run_id, run_date, trigger, status, landing_dir, workers, scheduler,
                                               host, pid, log_file)
               values (%s, %s, %s, 'running', %s, %s, %s, %s, %s, %s)""",
            (run_id, run_date, trigger, landing_dir, workers, scheduler, socket.gethostname(), os.getpid(), log_file),
        )
    return run_id


class RunAlreadyRunning(RuntimeError):
    """Another `metalayer` run holds the date's run lock."""

    def __init__(self, run_date: date, holder: dict | None):
        self.run_date = run_date
        self.holder = holder or {}
        who = (
            f"run {self.holder.get('run_id')} (trigger {self.holder.get('trigger')}, started "
            f"{self.holder.get('started_at')})"
            if self.holder.get("run_id")
            else "another process"
        )
        super().__init__(
            f"a run for {run_date} is already in progress: {who}. "
            f"Wait for it to finish (`metalayer run --wait` queues behind it)."
        )


# Run locks are session-level advisory locks keyed (namespace, date): the server
# releases them when the holder's connection ends, so a killed run never leaves
# a stale lock behind.
RUN_LOCK_NAMESPACE = 0x4D4C  # "ML"
_LOCK_APP_PREFIX = "metalayer run lock "


@contextmanager
def date_lock(
    url: str, run_date: date, run_id: str, *, wait: bool = False, on_wait: Callable[[dict | None], None] | None = None
) -> Iterator[None]:
    """Hold the run lock for an extract date for the duration of the block.

    Without `wait`, raise RunAlreadyRunning when another run holds it; with
    `wait`, block until that run ends.
    """
    conn = db.connect(url, application_name=(_LOCK_APP_PREFIX + run_id)[:63])
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(%s, %s)", (RUN_LOCK_NAMESPACE, run_date.toordinal()))
            if not cur.fetchone()[0]:
                holder = _lock_holder(cur, run_date)
                if not wait:
                    raise RunAlreadyRunning(run_date, holder)
                if on_wait:
                    on_wait(holder)
                cur.execute("select pg_advisory_lock(%s, %s)", (RUN_LOCK_NAMESPACE, run_date.toordinal()))
        close_abandoned_runs(url)
        yield
    finally:
        # Unlock before closing: the server frees a session lock only when its
        # backend exits, a moment after close() returns.
        try:
            with conn.cursor() as cur:
                cur.execute("select pg_advisory_unlock_all()")
        except Exception:  # noqa: BLE001,S110 - a lost connection already released it
            pass
        conn.close()


def _lock_holder(cur, run_date: date) -> dict | None:
    cur.execute(
        """select substr(activity.application_name, %s), activity.pid, runs.trigger, runs.started_at
           from pg_locks as locks
           inner join pg_stat_activity as activity on activity.pid = locks.pid
           left join meta.pipeline_runs as runs
               on runs.run_id = substr(activity.application_name, %s)
           where locks.locktype = 'advisory' and locks.granted
             and locks.classid = %s and locks.objid = %s and locks.objsubid = 2""",
        (len(_LOCK_APP_PREFIX) + 1, len(_LOCK_APP_PREFIX) + 1, RUN_LOCK_NAMESPACE, run_date.toordinal()),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("run_id", "backend_pid", "trigger", "started_at"), row, strict=True))


def is_running(run_date: date, url: str) -> dict | None:
    """The run holding the date's run lock (run_id, backend_pid, trigger, started_at), or None."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_try_advisory_lock(%s, %s)", (RUN_LOCK_NAMESPACE, run_date.toordinal()))
        if cur.fetchone()[0]:
            cur.execute("select pg_advisory_unlock(%s, %s)", (RUN_LOCK_NAMESPACE, run_date.toordinal()))
            return None
        return _lock_holder(cur, run_date) or {"run_id": None}


PRESENCE_APP_PREFIX = "metalayer run "  # + run id: a plain `luigi` command's session for as long as it lives


def close_abandoned_runs(url: str, run_date: date | None = None) -> list[str]:
    """Mark failed the runs left 'running' by a command that no longer exists; returns their run ids.

    On this host a run's process is asked directly (its pid). A run of another host
    is alive while its session is: `metalayer run`'s date lock or a plain `luigi`
    command's presence session, both named after the run in pg_stat_activity.
    """
    host = socket.gethostname()
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """select runs.run_id, runs.host, runs.pid,
                      exists (select from pg_stat_activity as activity
                              where activity.datname = current_database()
                                and activity.application_name in (%s || runs.run_id, %s || runs.run_id))
               from meta.pipeline_runs as runs
               where runs.status = 'running' and (%s::date is null or runs.run_date = %s::date)""",
            (_LOCK_APP_PREFIX, PRESENCE_APP_PREFIX, run_date, run_date),
        )
        dead = [
            run_id
            for run_id, run_host, pid, present in cur.fetchall()
            if (not _process_alive(pid) if run_host == host and pid else not present)
        ]
        if dead:
            cur.execute(
                """update meta.pipeline_runs
                   set status = 'failed', finished_at = clock_timestamp(),
                       error = coalesce(error, 'abandoned: the process ended without finishing the run')
                   where run_id = any(%s)""",
                (dead,),
            )
            cur.execute(
                """update meta.task_runs set status = 'failed', finished_at = clock_timestamp(),
                       error = coalesce(error, 'abandoned: the process ended while the task was running')
                   where run_id = any(%s) and status = 'running'""",
                (dead,),
            )
    return dead


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_run(url: str, run_id: str, run_date: date) -> None:
    """Register a run started outside `metalayer run` (plain luigi CLI) on its first task.

    The row names the `luigi` command's process, not the worker process that
    happens to run the first task. Registering a new run also closes the runs
    that earlier commands abandoned.
    """
    trigger = os.environ.get("METALAYER_TRIGGER", "cli")
    pid = _process_run_owner if run_id == _process_run_id and _process_run_owner else os.getpid()
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.pipeline_runs (run_id, run_date, trigger, status, host, pid)
               values (%s, %s, %s, 'running', %s, %s) on conflict (run_id) do nothing""",
            (run_id, run_date, trigger, socket.gethostname(), pid),
        )
        registered = cur.rowcount == 1
    if registered:
        close_abandoned_runs(url)


@dataclass
class _PlainRun:
    """The run of this plain `luigi` command: closed when the command's process exits."""

    run_id: str
    owner: int
    outcomes: dict[date, Callable[[], tuple[str, str | None]]] = field(default_factory=dict)  # per root date
    presence: object | None = None  # the session that tells other hosts this run is alive


_plain_run: _PlainRun | None = None


def adopt_plain_run(run_date: date, outcome: Callable[[], tuple[str, str | None]]) -> str:
    """Make this process's run id the plain `luigi` command's, and close that run when the process exits.

    Called where Luigi first looks at the root task: in the command's own process,
    before it forks worker processes (which inherit the run id). `outcome()` gives
    the run's (status, error) at exit when no task closed it: 'success' when the
    graph is complete (whoever did the work: another worker may have), else
    'failed' and why. A process killed outright is closed by the next command.
    """
    global _plain_run
    import multiprocessing

    run_id = process_run_id(run_date)
    if multiprocessing.parent_process() is not None or _process_run_owner != os.getpid():
        return run_id  # a worker process: the command's process does the bookkeeping
    if _plain_run is None:
        _plain_run = _PlainRun(run_id=run_id, owner=os.getpid())
        try:
            _plain_run.presence = db.connect(application_name=(PRESENCE_APP_PREFIX + run_id)[:63])
        except Exception:  # noqa: BLE001 - the database is down: the tasks will say so
            _plain_run.presence = None
        atexit.register(_close_plain_run)
    _plain_run.outcomes[run_date] = outcome
    return run_id


def _close_plain_run() -> None:
    run = _plain_run
    if run is None or run.owner != os.getpid():
        return
    try:
        url = db.Warehouse.from_environment().url  # at the exit of a plain `luigi` command
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute("select status, error from meta.pipeline_runs where run_id = %s", (run.run_id,))
            row = cur.fetchone()
        if row is not None:
            status, error = row
            if status == "running" or (error or "").startswith("abandoned:"):
                results = [outcome() for outcome in run.outcomes.values()]
                failed = [why for status, why in results if status != "success"]
                status, error = (
                    ("failed", "\n".join(why or "incomplete" for why in failed)) if failed else ("success", None)
                )
            with db.transaction(url) as conn, conn.cursor() as cur:
                cur.execute(
                    """update meta.pipeline_runs
                       set status = %s, error = %s, finished_at = coalesce(finished_at, clock_timestamp())
                       where run_id = %s""",
                    (status, error, run.run_id),
                )
                cur.execute(
                    """update meta.task_runs set status = 'failed', finished_at = clock_timestamp(),
                           error = coalesce(error, 'interrupted: the luigi command ended while the task ran')
                       where run_id = %s and status = 'running'""",
                    (run.run_id,),
                )
    except Exception as exc:  # noqa: BLE001 - at exit: the next command closes the run (abandoned)
        logging.getLogger("metalayer").warning(
            "run %s not closed: %s: %s", run.run_id, type(exc).__name__, str(exc).strip()
        )
    finally:
        if run.presence is not None:
            run.presence.close()


def finish_run(url: str, run_id: str, status: str, error: str | None = None) -> None:
    """Close the run; a task run of it still 'running' failed while the database could not record it."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """update meta.pipeline_runs set status = %s, error = %s, finished_at = clock_timestamp()
               where run_id = %s""",
            (status, error, run_id),
        )
        cur.execute(
            """update meta.task_runs set status = 'failed', finished_at = clock_timestamp(),
                   error = coalesce(error, 'interrupted: the attempt ended while the database was unreachable')
               where run_id = %s and status = 'running'""",
            (run_id,),
        )
