"""Run bookkeeping: one meta.pipeline_runs row per run of the graph."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from pipeline import db

TRIGGERS = ("cli", "cron", "console", "backfill", "test")


def new_run_id(run_date: date) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{run_date.isoformat()}-{stamp}-{secrets.token_hex(3)}"


_process_run_id: str | None = None


def process_run_id() -> str:
    """The run id of a plain `luigi --module pipeline ...` invocation (no run id passed).

    Created once per process; worker processes forked by Luigi inherit it, or
    take METALAYER_RUN_ID from the environment when set.
    """
    global _process_run_id
    if _process_run_id is None:
        _process_run_id = os.environ.get("METALAYER_RUN_ID") or new_run_id(date.today())
    return _process_run_id


def start_run(url: str, run_date: date, trigger: str, *, run_id: str | None = None,
              landing_dir: str | None = None, workers: int | None = None, scheduler: str | None = None,
              log_file: str | None = None) -> str:
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; expected one of {', '.join(TRIGGERS)}")
    run_id = run_id or new_run_id(run_date)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.pipeline_runs (run_id, run_date, trigger, status, landing_dir, workers, scheduler,
                                               host, pid, log_file)
               values (%s, %s, %s, 'running', %s, %s, %s, %s, %s, %s)""",
            (run_id, run_date, trigger, landing_dir, workers, scheduler, socket.gethostname(), os.getpid(),
             log_file),
        )
    return run_id


class RunAlreadyRunning(RuntimeError):
    """Another `metalayer` run holds the date's run lock."""

    def __init__(self, run_date: date, holder: dict | None):
        self.run_date = run_date
        self.holder = holder or {}
        who = (f"run {self.holder.get('run_id')} (trigger {self.holder.get('trigger')}, started "
               f"{self.holder.get('started_at')})" if self.holder.get("run_id") else "another process")
        super().__init__(f"a run for {run_date} is already in progress: {who}. "
                         f"Wait for it to finish (`metalayer run --wait` queues behind it).")


# Run locks are session-level advisory locks keyed (namespace, date): the server
# releases them when the holder's connection ends, so a killed run never leaves
# a stale lock behind.
RUN_LOCK_NAMESPACE = 0x4D4C  # "ML"
_LOCK_APP_PREFIX = "metalayer run lock "


@contextmanager
def date_lock(url: str, run_date: date, run_id: str, *, wait: bool = False,
              on_wait: Callable[[dict | None], None] | None = None) -> Iterator[None]:
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
        _close_abandoned_runs(url, run_date)
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


def is_running(run_date: date, url: str | None = None) -> dict | None:
    """The run holding the date's run lock (run_id, backend_pid, trigger, started_at), or None."""
    url = url or db.database_url()
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_try_advisory_lock(%s, %s)", (RUN_LOCK_NAMESPACE, run_date.toordinal()))
        if cur.fetchone()[0]:
            cur.execute("select pg_advisory_unlock(%s, %s)", (RUN_LOCK_NAMESPACE, run_date.toordinal()))
            return None
        return _lock_holder(cur, run_date) or {"run_id": None}


def _close_abandoned_runs(url: str, run_date: date) -> None:
    """Runs of this date left 'running' by a process on this host that no longer exists."""
    host = socket.gethostname()
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select run_id, pid from meta.pipeline_runs where run_date = %s and status = 'running' "
                    "and host = %s", (run_date, host))
        dead = [run_id for run_id, pid in cur.fetchall() if pid and not _process_alive(pid)]
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True



def ensure_run(url: str, run_id: str, run_date: date) -> None:
    """Register a run started outside `metalayer run` (plain luigi CLI) on its first task."""
    trigger = os.environ.get("METALAYER_TRIGGER", "cli")
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.pipeline_runs (run_id, run_date, trigger, status, host, pid)
               values (%s, %s, %s, 'running', %s, %s) on conflict (run_id) do nothing""",
            (run_id, run_date, trigger, socket.gethostname(), os.getpid()),
        )


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
