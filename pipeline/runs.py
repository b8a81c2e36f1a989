"""Run bookkeeping: one meta.pipeline_runs row per run of the graph."""

from __future__ import annotations

import os
import secrets
import socket
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
              landing_dir: str | None = None, workers: int | None = None, scheduler: str | None = None) -> str:
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; expected one of {', '.join(TRIGGERS)}")
    run_id = run_id or new_run_id(run_date)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.pipeline_runs (run_id, run_date, trigger, status, landing_dir, workers, scheduler,
                                               host, pid)
               values (%s, %s, %s, 'running', %s, %s, %s, %s, %s)""",
            (run_id, run_date, trigger, landing_dir, workers, scheduler, socket.gethostname(), os.getpid()),
        )
    return run_id


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
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """update meta.pipeline_runs set status = %s, error = %s, finished_at = clock_timestamp()
               where run_id = %s""",
            (status, error, run_id),
        )
