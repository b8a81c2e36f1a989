"""The shared task base: data, Luigi marker and bookkeeping in one transaction.

A layer task declares its table, its SQL file(s) (or overrides ``execute``)
and what it requires. ``run`` opens one transaction, does the work, inserts the
marker row and the task's success row, and commits; a failure anywhere rolls
all of it back and records the error on a separate connection.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import luigi
from luigi.contrib.postgres import PostgresTarget

from pipeline.core import db
from pipeline.core.config import operations, postgres
from pipeline.core.errors import ExpectedFailure, PermanentFailure
from pipeline.core.runs import ensure_run, process_run_id

logger = logging.getLogger("metalayer")


def model_sql(model: str) -> str:
    """A task's model (a path from the repository root) as the SQL loader names it: relative to sql/."""
    if not (model.startswith("sql/") and model.endswith(".sql")):
        raise ValueError(f"{model!r} is not an SQL file under sql/")
    return model.removeprefix("sql/")


@dataclass
class TaskStats:
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rows_duplicate: int | None = None
    message: str | None = None
    status: str = "success"  # or "skipped" when there was nothing to do
    phase_seconds: dict[str, float] = field(default_factory=dict)


class PhaseClock:
    """Seconds spent in each named phase of a task, for meta.task_runs.phase_seconds."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


class MarkerTarget(PostgresTarget):
    """Luigi's PostgresTarget on MetaLayer's connection, marker table from luigi.cfg.

    The marker table is created by the schema bootstrap, never lazily, and a
    marker that already exists (a concurrent run finished first) is not an error.
    """

    def __init__(self, table: str, update_id: str, url: str):
        self.url = url
        self.marker_table = postgres().marker_table
        super().__init__(host="", database="", user="", password=None, table=table, update_id=update_id, port=None)

    def connect(self):
        return db.connect(self.url)

    def create_marker_table(self):
        pass

    def exists(self, connection=None):
        if connection is not None:
            return super().exists(connection)
        conn = self.connect()
        try:
            return super().exists(conn)
        finally:
            conn.close()

    def touch(self, connection=None):
        from psycopg2 import sql

        query = sql.SQL("insert into {} (update_id, target_table) values (%s, %s) on conflict do nothing").format(
            sql.Identifier(*self.marker_table.split("."))
        )
        with connection.cursor() as cur:
            cur.execute(query, (self.update_id, self.table))


class WarehouseTask(luigi.Task):
    """Base of every task that writes to the warehouse for one extract date."""

    date = luigi.DateParameter()
    run_id = luigi.Parameter(default="", significant=False, description="pipeline run this task belongs to")
    landing_dir = luigi.Parameter(
        default="", significant=False, description="landing dir (default: luigi.cfg [metalayer] landing_dir)"
    )

    # What the task declares; pipeline/registry.py lists every task and derives the table lists from these.
    layer: str = ""  # bronze, silver, gold, or anomalies (observations of gold)
    table: str = ""  # schema-qualified table the task builds
    model: str = ""  # the file that defines the table's rows, from the repository root (a .sql file runs by default)
    writes: tuple[str, ...] = ()  # other tables it writes in the same transaction, that users read
    state: tuple[str, ...] = ()  # tables of its own bookkeeping (watermarks, change batches)

    @functools.cached_property
    def warehouse(self) -> db.Warehouse:
        """The database the task writes to, made once per task object where a worker runs it."""
        return db.Warehouse.from_environment()

    @property
    def effective_run_id(self) -> str:
        return self.run_id or process_run_id()

    def output(self) -> MarkerTarget:
        return MarkerTarget(self.table, self.task_id, self.warehouse.url)

    def sql_params(self) -> dict:
        return {"date": self.date, "run_id": self.effective_run_id}

    def execute(self, conn) -> TaskStats:
        """Do the task's work inside the open transaction; the default runs its model, an SQL file."""
        with conn.cursor() as cur:
            cur.execute(db.sql_text(model_sql(self.model)), self.sql_params())
            return TaskStats(rows_out=max(cur.rowcount, 0))

    @property
    def retry_count(self) -> int | None:
        """Luigi's per-task retry policy: luigi.cfg [retries] <TaskFamily> overrides [scheduler] retry_count.

        A task whose last failure was permanent (the same input fails the same
        way: a bad file, a failed quality gate) is not retried. Luigi reads this
        when the worker reports the failure.
        """
        if _failed_permanently(self.task_id):
            return 1
        value = luigi.configuration.get_config().get("retries", self.task_family, None)
        return int(value) if value not in (None, "") else None

    def on_failure(self, exception: BaseException) -> str:
        """What Luigi sends luigid (and its failure e-mails): an expected failure's message, else the traceback."""
        if is_expected(exception):
            return failure_text(exception)
        return super().on_failure(exception)

    def report(self, message: str, percent: int | None = None) -> None:
        """Status and progress shown in the luigid visualiser (and the console, through task_runs)."""
        self.set_status_message(message)
        if percent is not None:
            self.set_progress_percentage(max(0, min(100, int(percent))))

    def run(self) -> None:
        if _failed_permanently(self.task_id):
            # Luigi learns of a task's new retry policy only after the failure it
            # reports, so it schedules one more attempt: end it at once.
            raise PermanentFailure(f"{self.task_id} is not run again in this run: its failure above is permanent")
        url = self.warehouse.ready().url
        run_id = self.effective_run_id
        config = operations()
        unrecorded: list[tuple[int, BaseException]] = []  # failed attempts the server was not there to hear of
        for attempt in range(config.transient_retries + 1):
            try:
                self._run_once(url, run_id, unrecorded)
                return
            except Exception as exc:
                if is_permanent(exc):
                    _record_permanent_failure(self.task_id)
                if attempt >= config.transient_retries or not is_transient(exc):
                    raise
                wait = config.transient_backoff_seconds * 2**attempt
                logger.warning(
                    "%s: transient database error (%s: %s); attempt %d of %d in %.1fs",
                    self.task_id,
                    type(exc).__name__,
                    str(exc).strip(),
                    attempt + 2,
                    config.transient_retries + 1,
                    wait,
                )
                self.report(f"transient database error, retrying in {wait:.0f}s: {type(exc).__name__}")
                time.sleep(wait)

    def _run_once(self, url: str, run_id: str, unrecorded: list[tuple[int, BaseException]]) -> None:
        ensure_run(url, run_id, self.date)
        while unrecorded:
            _fail_task_run(url, *unrecorded.pop(0))
        task_run_id = _start_task_run(url, run_id, self)
        try:
            self.report(f"running {self.table} for {self.date}", 0)
            # pg_stat_activity shows which task a backend works for.
            with db.transaction(
                url, application_name=f"metalayer {self.task_family} {self.date}"[:63], settings=task_session_settings()
            ) as conn:
                if self._done_meanwhile(conn):
                    stats = TaskStats(
                        status="skipped",
                        message=("already done: another process committed this task while this one waited for it"),
                    )
                else:
                    stats = self.execute(conn)
                    _record_lineage(conn, task_run_id, run_id, self)
                    self.report("committing", 99)
                    self.output().touch(conn)
                _finish_task_run(conn, task_run_id, stats)
            self.report(f"done: {stats.rows_out:,} rows out", 100)
        except Exception as exc:
            if not _fail_task_run(url, task_run_id, exc):
                unrecorded.append((task_run_id, exc))
            raise

    def _done_meanwhile(self, conn) -> bool:
        """Serialize on the task and look at its marker again, inside the task's transaction.

        Luigi checks the marker before it schedules a task; two processes that do
        so at the same time (two plain `luigi` invocations, a run beside a rerun)
        would both do the work. The lock makes the second wait for the first's
        commit; it then finds the marker and does nothing.
        """
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (TASK_LOCK_NAMESPACE, self.task_id))
        return self.output().exists(conn)


# Per-task transaction locks are keyed (namespace, hashtext(task_id)); a hash
# collision only makes two tasks wait for each other.
TASK_LOCK_NAMESPACE = 0x4D54  # "MT"


def task_session_settings() -> dict[str, int]:
    """Timeouts of a task's session, from luigi.cfg [operations] (seconds; 0 = none), in milliseconds."""
    config = operations()
    return {
        "statement_timeout": round(config.statement_timeout_seconds * 1000),
        "lock_timeout": round(config.lock_timeout_seconds * 1000),
    }


def is_permanent(exc: BaseException) -> bool:
    """Errors that say retrying can not help: their class sets `retryable = False`."""
    return getattr(exc, "retryable", True) is False


is_expected = is_permanent  # an expected failure (bad input, a failed check) is one that a retry can not fix

DEFAULT_HINT = ExpectedFailure.hint


def failure_text(exc: BaseException) -> str:
    """A failure as a person reads it: `Type: message`, and for an expected failure a line on what to do.

    No traceback and no blank line: the first paragraph of a task's recorded error is
    this text, whatever follows it.
    """
    message = "\n".join(line.rstrip() for line in str(exc).splitlines() if line.strip()) or "(no message)"
    text = f"{type(exc).__name__}: {message}"
    if is_expected(exc):
        text += f"\nWhat to do: {getattr(exc, 'hint', None) or DEFAULT_HINT}"
    return text


class ExpectedFailureLogFilter(logging.Filter):
    """Luigi logs a failed task with its traceback; for an expected failure, log its message instead.

    On Luigi's `luigi-interface` logger, so a plain `luigi --module pipeline` run
    prints the file and line or the rule and what to do, not a traceback. The
    record is marked `is_expected_failure` for filters after this one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_expected(error):
            record.msg, record.args = f"{record.getMessage()}\n{failure_text(error)}", ()
            record.exc_info = record.exc_text = None
            record.is_expected_failure = True
        return True


logging.getLogger("luigi-interface").addFilter(ExpectedFailureLogFilter())


def recorded_error(exc: BaseException) -> str:
    """meta.task_runs.error: failure_text, and for an unexpected error a blank line and its traceback."""
    text = failure_text(exc)
    if is_expected(exc):
        return text
    return f"{text}\n\n" + "".join(traceback.format_exception(exc))[-4000:]


# Permanent failures seen by this worker process. With several Luigi workers a
# task runs in a forked child, so the child also leaves a file for its parent,
# the process that reports the failure (and reads retry_count) to the scheduler.
_permanent_failures: set[str] = set()


def _permanent_failure_file(task_id: str, worker_pid: int) -> Path:
    return db.metalayer_home() / "run" / f"permanent-failures-{worker_pid}" / task_id


def _record_permanent_failure(task_id: str) -> None:
    import multiprocessing

    _permanent_failures.add(task_id)
    if multiprocessing.parent_process() is not None:
        path = _permanent_failure_file(task_id, os.getppid())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def _failed_permanently(task_id: str) -> bool:
    if task_id in _permanent_failures:
        return True
    path = _permanent_failure_file(task_id, os.getpid())
    if path.exists():
        path.unlink(missing_ok=True)  # read once, at the failure report
        _permanent_failures.add(task_id)
        return True
    return False


def is_failed_permanently(task_id: str) -> bool:
    """Whether this process saw the task fail permanently in this run (Luigi may still start it once more)."""
    return task_id in _permanent_failures


def forget_permanent_failures() -> None:
    """A new run starts with a clean slate: what failed before may have been fixed."""
    _permanent_failures.clear()


# SQLSTATE classes and codes worth a retry: the same work would succeed a moment later.
TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown (server restarting)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (server starting up)
    "53300",  # too_many_connections
}


def is_transient(exc: BaseException) -> bool:
    """Connection lost or refused, serialization failure, deadlock, lock timeout, server restarting."""
    import psycopg2

    while exc is not None:
        code = getattr(exc, "pgcode", None)
        if code in TRANSIENT_SQLSTATES or (code or "").startswith("08"):
            return True
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError) and code is None:
            return True  # connection refused, server closed the connection, connection already closed
        exc = exc.__cause__ or exc.__context__
    return False


def _task_params(task: luigi.Task) -> dict:
    return {name: str(value) for name, value in task.param_kwargs.items()}


def _start_task_run(url: str, run_id: str, task: WarehouseTask) -> int:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into meta.task_runs (run_id, task_family, task_id, target_table, params, status, host, pid)
               values (%s, %s, %s, %s, %s, 'running', %s, %s) returning task_run_id""",
            (
                run_id,
                task.task_family,
                task.task_id,
                task.table,
                json.dumps(_task_params(task)),
                socket.gethostname(),
                os.getpid(),
            ),
        )
        return cur.fetchone()[0]


def lineage_inputs(task: luigi.Task) -> list[str]:
    """What a task reads, from its requires(): each required task's table; a landing file as file:<path>;
    any other input by its Luigi task id."""
    inputs: set[str] = set()
    for required in luigi.task.flatten(task.requires()):
        table = getattr(required, "table", "")
        files = [
            target.path for target in luigi.task.flatten(required.output()) if isinstance(target, luigi.LocalTarget)
        ]
        if table:
            inputs.add(table)
        elif files:
            inputs.update(f"file:{path}" for path in files)
        else:
            inputs.add(required.task_id)
    return sorted(inputs)


def _record_lineage(conn, task_run_id: int, run_id: str, task: WarehouseTask) -> None:
    """meta.lineage: this run of the task read its inputs and wrote its table (one statement)."""
    with conn.cursor() as cur:
        cur.execute(
            """insert into meta.lineage (task_run_id, run_id, run_date, task_family, upstream, downstream)
               select %s, %s, %s, %s, upstream, %s from unnest(%s::text[]) as upstream
               on conflict do nothing""",
            (task_run_id, run_id, task.date, task.task_family, task.table, lineage_inputs(task)),
        )


def _finish_task_run(conn, task_run_id: int, stats: TaskStats) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """update meta.task_runs
               set status = %s, message = %s, rows_in = %s, rows_out = %s, rows_rejected = %s,
                   rows_duplicate = %s, phase_seconds = %s, finished_at = clock_timestamp()
               where task_run_id = %s""",
            (
                stats.status,
                stats.message,
                stats.rows_in,
                stats.rows_out,
                stats.rows_rejected,
                stats.rows_duplicate,
                json.dumps({name: round(seconds, 3) for name, seconds in stats.phase_seconds.items()}),
                task_run_id,
            ),
        )


def _fail_task_run(url: str, task_run_id: int, exc: BaseException) -> bool:
    """Record the failure of a task run (and its pipeline run); returns whether the database took it."""
    try:
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute(
                """update meta.task_runs
                   set status = 'failed', error = %s, finished_at = clock_timestamp()
                   where task_run_id = %s
                   returning run_id, task_family""",
                (recorded_error(exc), task_run_id),
            )
            run_id, family = cur.fetchone()
            cur.execute(
                """update meta.pipeline_runs set status = 'failed', error = coalesce(error, %s)
                   where run_id = %s""",
                (f"{family} failed: {failure_text(exc)}", run_id),
            )
        return True
    except Exception:  # noqa: BLE001 - bookkeeping must not mask the task's own error
        return False
