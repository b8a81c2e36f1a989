"""Run the graph for a date with bookkeeping, progress and a summary.

The CLI, the console and the tests call these functions; none of them talks to
Luigi directly.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import luigi
import psycopg2
from luigi.execution_summary import LuigiStatusCode
from psycopg2 import sql

from pipeline import registry
from pipeline.base import (
    PermanentFailure,
    WarehouseTask,
    failure_text,
    forget_permanent_failures,
    is_expected,
    is_failed_permanently,
)
from pipeline.core import db
from pipeline.core.config import landing_dir as default_landing_dir
from pipeline.core.config import quality as quality_config
from pipeline.core.landing import missing_landing_files
from pipeline.core.runs import (
    RunAlreadyRunning,
    close_abandoned_runs,
    date_lock,
    finish_run,
    new_run_id,
    start_run,
)
from pipeline.master import MasterTask
from pipeline.operations import alerts, sla
from pipeline.quality.scores import quality_summary

Printer = Callable[[str], None]
# Task families whose message the run summary prints even when they succeed.
SUMMARY_MESSAGES = frozenset({"CustomerClv"})


@dataclass
class RunResult:
    run_id: str
    run_date: date
    success: bool
    status: str
    seconds: float
    luigi_status: str
    luigi_summary: str
    tasks: list[dict] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)
    quality: dict = field(default_factory=dict)
    error: str | None = None
    log_file: str | None = None
    recorded: bool = True  # False: the database was unreachable at the end, tables and tasks are not known
    joined: bool = False  # a worker that joined another process's run (metalayer run --join)


class _Progress:
    """Prints one line as each warehouse task starts and ends (in whichever process runs it)."""

    printer: Printer | None = None
    log_path: str | None = None
    started: dict[str, float] = {}

    @classmethod
    def on_start(cls, task: WarehouseTask) -> None:
        cls.started[task.task_id] = time.perf_counter()
        if cls.printer and not is_failed_permanently(task.task_id):  # Luigi's extra attempt, ended at once
            cls.printer(f"  ... {task.table:<32} {task.date}")

    @classmethod
    def on_end(cls, task: WarehouseTask, outcome: str) -> None:
        if cls.printer:
            took = time.perf_counter() - cls.started.pop(task.task_id, time.perf_counter())
            cls.printer(f"  {outcome:<4} {task.table:<32} {task.date} {took:6.2f}s")


@WarehouseTask.event_handler(luigi.Event.START)
def _task_started(task):
    _Progress.on_start(task)


@WarehouseTask.event_handler(luigi.Event.SUCCESS)
def _task_succeeded(task):
    _Progress.on_end(task, "ok")


@WarehouseTask.event_handler(luigi.Event.FAILURE)
def _task_failed(task, exception):
    if isinstance(exception, PermanentFailure):
        return  # Luigi's extra attempt after a permanent failure, ended at once: the failure was shown
    _Progress.on_end(task, "FAIL")
    if _Progress.printer:
        text = failure_text(exception).splitlines()[0]
        if not is_expected(exception) and _Progress.log_path:
            text += f" (traceback in {_Progress.log_path})"
        _Progress.printer(f"       {text}")


class _QuietExpectedFailures(logging.Filter):
    """Drop Luigi's record of an expected failure: the run prints its message (and what to do) itself.

    Unexpected errors pass, so their traceback reaches stderr and the run's log file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not getattr(record, "is_expected_failure", False) and (error is None or not is_expected(error))


_QUIET = _QuietExpectedFailures()


LAYERS = ("bronze", "silver")


def layer_targets(layer: str, run_date: date, run_id: str, landing_dir: str) -> list[luigi.Task]:
    """The tasks that complete a layer (and everything before it) for a date."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
    common = {"date": run_date, "run_id": run_id, "landing_dir": landing_dir}
    return [task(**common) for task in registry.tasks(layer)]


def run_pipeline(
    run_date: date,
    *,
    landing: str | Path | None = None,
    workers: int = 1,
    scheduler_url: str | None = None,
    trigger: str = "cli",
    printer: Printer | None = None,
    upto: str | None = None,
    run_id: str | None = None,
    wait: bool = False,
    prepare: Callable[[str, str, Printer], None] | None = None,
    also: Callable[[str], list[luigi.Task]] | None = None,
) -> RunResult:
    """Build MasterTask (or the layers up to `upto`) for the date under a new meta.pipeline_runs row.

    `also(run_id)` gives further tasks to build: a rerun names the tasks it
    invalidated, because Luigi does not look below a complete task (a silver
    task rerun without its downstream is not reached from a complete gold).

    The run holds the date's run lock (runs.date_lock) from start to end: a
    second run of the same date raises RunAlreadyRunning, or waits with
    `wait`. `prepare(url, run_id, say)` runs under the lock before the graph
    (reruns invalidate markers there). Never raises for task failures: the
    result says what happened; SLA breaches and failures are alerted.
    """
    url = db.Warehouse.from_environment().ready().url
    landing_path = str(Path(landing).resolve() if landing else default_landing_dir())
    run_id = run_id or new_run_id(run_date)
    log = RunLog(run_date, run_id, printer)

    def waiting(holder: dict | None) -> None:
        log.say(f"waiting: {RunAlreadyRunning(run_date, holder)}")

    with date_lock(url, run_date, run_id, wait=wait, on_wait=waiting), log:
        start_run(
            url,
            run_date,
            trigger,
            run_id=run_id,
            landing_dir=landing_path,
            workers=workers,
            scheduler=scheduler_url or "local",
            log_file=str(log.path),
        )
        log.say(
            f"MetaLayer run {run_id}: extract date {run_date}, landing {landing_path}, "
            f"{workers} worker(s), scheduler {scheduler_url or 'local'}, trigger {trigger}"
        )
        layers = ("bronze",) if upto == "bronze" else ("bronze", "silver") if upto == "silver" else sla.LAYERS
        watch = sla.SlaWatch(
            url, run_id, run_date, layers, on_breach=lambda miss: _alert_sla(url, run_id, run_date, miss, log)
        )
        started = time.perf_counter()
        try:
            if prepare:
                prepare(url, run_id, log.say)
            targets = (
                layer_targets(upto, run_date, run_id, landing_path)
                if upto
                else [MasterTask(date=run_date, run_id=run_id, landing_dir=landing_path)]
            )
            if also:
                targets = [*also(run_id), *targets]
            missing = missing_landing_files(landing_path, run_date)
            forget_permanent_failures()
            watch.start()
            _Progress.printer, _Progress.log_path = log.say, str(log.path)
            options = {"scheduler_url": scheduler_url} if scheduler_url else {"local_scheduler": True}
            # Retries ([scheduler] retry_count / retry_delay) need a worker that stays
            # alive; with an extract missing it would wait forever, so it does not.
            with _worker_settings(keep_alive=not missing):
                result = luigi.build(targets, workers=workers, detailed_summary=True, log_level="WARNING", **options)
        except Exception as exc:
            finish_run(url, run_id, "failed", f"{type(exc).__name__}: {exc}")
            _alert(url, "run_failed", run_id, run_date, f"run {run_id} crashed", f"{type(exc).__name__}: {exc}", log)
            raise
        finally:
            _Progress.printer = _Progress.log_path = None
            if watch.is_started:
                watch.finish()
        seconds = time.perf_counter() - started
        success = result.status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
        error = None
        try:
            if not success:
                error = run_error(url, run_id) or _failure_text(result)
                log.write_summary("Luigi's execution summary:" + result.summary_text)
            finish_run(url, run_id, "success" if success else "failed", error)
            run = RunResult(
                run_id=run_id,
                run_date=run_date,
                success=success,
                status="success" if success else "failed",
                seconds=seconds,
                luigi_status=result.status.name,
                luigi_summary=result.summary_text,
                tasks=task_summary(url, run_id),
                tables=table_summary(url, run_date),
                quality=quality_summary(url, run_date, registry.silver_tables()),
                error=error,
                log_file=str(log.path),
            )
        except psycopg2.OperationalError as exc:
            # The database is gone (down longer than the retries): say so, not a traceback. The run's row
            # stays 'running' until the next run of the date marks it failed (abandoned).
            run = RunResult(
                run_id=run_id,
                run_date=run_date,
                success=False,
                status="failed",
                seconds=seconds,
                luigi_status=result.status.name,
                luigi_summary=result.summary_text,
                log_file=str(log.path),
                error=f"the database could not be reached to record the end of the run: {str(exc).strip()}",
                recorded=False,
            )
            log.write_summary(format_summary(run))
            return run
        if not success:
            failed = [task for task in run.tasks if task["status"] == "failed"]
            what = ", ".join(dict.fromkeys(task["task_family"] for task in failed)) or run.luigi_status
            _alert(url, "run_failed", run_id, run_date, f"run failed: {what}", error or "", log)
        _alert_quality(url, run, log)
        _push_metrics(url, run_id)
        log.write_summary(format_summary(run))
    return run


class CannotJoin(RunAlreadyRunning):
    """The run in progress can not take another worker: it uses a local scheduler."""

    def __init__(self, run_date: date, holder: dict, why: str):
        super().__init__(run_date, holder)
        self.args = (f"{self} {why}",)


def run_or_join(
    run_date: date,
    *,
    landing: str | Path | None = None,
    workers: int = 1,
    scheduler_url: str | None = None,
    trigger: str = "cli",
    printer: Printer | None = None,
) -> RunResult:
    """Run the date; when a run of it is in progress through a luigid, work for that run instead.

    What a second host does (`metalayer run --join`): it builds the same graph
    through the run's luigid as one more worker, its tasks recorded under that
    run's id; the run's own process closes the run. Raises CannotJoin when the
    run in progress uses a local scheduler.
    """
    while True:
        try:
            return run_pipeline(
                run_date,
                landing=landing,
                workers=workers,
                scheduler_url=scheduler_url,
                trigger=trigger,
                printer=printer,
            )
        except CannotJoin:
            raise
        except RunAlreadyRunning as busy:
            if not busy.holder.get("run_id"):
                raise
            joined = join_run(
                run_date, busy.holder, landing=landing, workers=workers, scheduler_url=scheduler_url, printer=printer
            )
            if joined is not None:
                return joined
            # The run ended before this process joined it (or has not recorded itself yet): try again.
            time.sleep(0.5)


def join_run(
    run_date: date,
    holder: dict,
    *,
    landing: str | Path | None = None,
    workers: int = 1,
    scheduler_url: str | None = None,
    printer: Printer | None = None,
) -> RunResult | None:
    """Work for the run in progress `holder` as one more Luigi worker; None when that run has ended."""
    url = db.Warehouse.from_environment().ready().url
    run_id = holder["run_id"]
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select status, scheduler, landing_dir from meta.pipeline_runs where run_id = %s", (run_id,))
        row = cur.fetchone()
    if row is None or row[0] != "running":
        return None
    _, run_scheduler, run_landing = row
    scheduler_url = scheduler_url or (run_scheduler if run_scheduler != "local" else None)
    if not scheduler_url:
        raise CannotJoin(
            run_date,
            holder,
            "It uses a local scheduler, so no other process can work for it; "
            "start runs with --scheduler-url to let other hosts join them.",
        )
    landing_path = str(Path(landing).resolve() if landing else run_landing or default_landing_dir())
    log = RunLog(run_date, run_id, printer)
    with log:
        log.say(
            f"MetaLayer worker joining run {run_id}: extract date {run_date}, landing {landing_path}, "
            f"{workers} worker(s), scheduler {scheduler_url}; its tasks are recorded under that run"
        )
        started = time.perf_counter()
        forget_permanent_failures()
        _Progress.printer, _Progress.log_path = log.say, str(log.path)
        try:
            # Retries are the run's own process's to make: this worker leaves when it has nothing to run
            # and no other worker runs a task of the graph.
            with _worker_settings(keep_alive=False):
                result = luigi.build(
                    [MasterTask(date=run_date, run_id=run_id, landing_dir=landing_path)],
                    workers=workers,
                    detailed_summary=True,
                    log_level="WARNING",
                    scheduler_url=scheduler_url,
                )
        finally:
            _Progress.printer = _Progress.log_path = None
        success = result.status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
        error = None if success else run_error(url, run_id) or _failure_text(result)
        if not success:
            log.write_summary("Luigi's execution summary:" + result.summary_text)
        # The run's own process closes it; if that process died meanwhile, its run is closed here.
        close_abandoned_runs(url, run_date)
        run = RunResult(
            run_id=run_id,
            run_date=run_date,
            success=success,
            status="success" if success else "failed",
            seconds=time.perf_counter() - started,
            luigi_status=result.status.name,
            luigi_summary=result.summary_text,
            tasks=task_summary(url, run_id),
            tables=table_summary(url, run_date),
            quality=quality_summary(url, run_date, registry.silver_tables()),
            error=error,
            log_file=str(log.path),
            joined=True,
        )
        log.write_summary(format_summary(run))
    return run


@contextmanager
def _worker_settings(**settings) -> Iterator[None]:
    """Override [worker] settings for one luigi.build in this process."""
    config = luigi.configuration.get_config()
    saved = {key: config.get("worker", key, None) for key in settings}
    if not config.has_section("worker"):
        config.add_section("worker")
    for key, value in settings.items():
        config.set("worker", key, str(value).lower())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                config.remove_option("worker", key)
            else:
                config.set("worker", key, value)


class RunLog:
    """The run's log file under $METALAYER_HOME/logs/runs/: progress lines, Luigi's warnings and the summary."""

    def __init__(self, run_date: date, run_id: str, printer: Printer | None):
        self.path = db.metalayer_home() / "logs" / "runs" / run_date.isoformat() / f"{run_id}.log"
        self.printer = printer
        self._file = None
        self._handler: logging.Handler | None = None

    def __enter__(self) -> RunLog:
        logging.getLogger("luigi-interface").addFilter(_QUIET)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self._handler = logging.StreamHandler(self._file)
        self._handler.setLevel(logging.WARNING)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        for name in _LOGGERS:
            logging.getLogger(name).addHandler(self._handler)
        return self

    def __exit__(self, *exc_info) -> None:
        logging.getLogger("luigi-interface").removeFilter(_QUIET)
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        if self._file:
            self._file.close()
            self._file = None

    def say(self, message: str) -> None:
        if self.printer:
            self.printer(message)
        if self._file and not self._file.closed:
            self._file.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}\n")

    def write_summary(self, text: str) -> None:
        if self._file and not self._file.closed:
            self._file.write(text + "\n")


_LOGGERS = ("luigi-interface", "metalayer")


def _alert(url: str, kind: str, run_id: str, run_date: date, summary: str, error: str, log: RunLog) -> None:
    alert = alerts.Alert(
        kind=kind,
        run_id=run_id,
        run_date=run_date,
        summary=summary,
        error=error or "",
        where_to_look=alerts.where_to_look(run_id, str(log.path)),
    )
    sent = alerts.send(alert, url)
    if sent:
        log.say(
            f"alert {kind} sent: " + ", ".join(f"{channel} {'ok' if ok else 'FAILED'}" for channel, ok in sent.items())
        )


def _alert_sla(url: str, run_id: str, run_date: date, miss: dict, log: RunLog) -> None:
    log.say(f"SLA MISSED: {miss['message']}")
    _alert(
        url,
        "sla_missed",
        run_id,
        run_date,
        miss["message"],
        f"threshold {miss['threshold_minutes']:g} min, expected by {miss['expected_by']:%Y-%m-%d %H:%M:%S %Z}",
        log,
    )


def _alert_quality(url: str, run: RunResult, log: RunLog) -> None:
    config = quality_config()
    threshold, limit = config.threshold, config.max_quarantined_share
    score = run.quality.get("scores", {}).get(("*", "overall"), (None, 0))[0]
    lossy = [share for share in run.quality.get("shares", {}).values() if share.exceeds(limit)]
    low_score = score is not None and float(score) < threshold
    if low_score or lossy:
        worst = run.quality.get("worst", [])[:5]
        details = "\n".join(
            [share.describe(limit) for share in lossy]
            + [
                f"{rule['table_name']}.{rule['rule_name']}: {rule['rows_failed']:,} of {rule['rows_checked']:,} rows "
                "failed"
                for rule in worst
            ]
        )
        summary = "; ".join(
            [f"quality score {float(score) * 100:.2f}% below the {threshold * 100:.2f}% threshold"] * low_score
            + [
                f"{share.table} quarantined {share.share * 100:.2f}% of its lines (limit {limit * 100:.2f}%)"
                for share in lossy
            ]
        )
        _alert(url, "quality_below_threshold", run.run_id, run.run_date, summary, details, log)


def _push_metrics(url: str, run_id: str) -> None:
    try:
        from pipeline.operations.metrics import push_run_metrics
    except ImportError:  # the metrics module arrives with the observability work
        return
    push_run_metrics(url, run_id)


def run_error(url: str, run_id: str) -> str | None:
    """The run's error as a person reads it: each task whose last attempt failed, with its message.

    A task's recorded error is its message (and for an expected failure what to do),
    then, for an unexpected one, a blank line and the traceback; only the message is
    taken. None when no task recorded a failure.
    """
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """select task_family, error from (
                   select distinct on (task_id) task_family, status, error, started_at
                   from meta.task_runs where run_id = %s
                   order by task_id, started_at desc
               ) as latest
               where status = 'failed' and error is not null
               order by started_at""",
            (run_id,),
        )
        failed = cur.fetchall()
    return "\n".join(f"{family} failed: {error.split(chr(10) * 2)[0].strip()}" for family, error in failed) or None


def _failure_text(result) -> str:
    text = (result.summary_text or "").strip()
    if result.status == LuigiStatusCode.MISSING_EXT:
        return "missing input: " + ", ".join(_missing_inputs(result)) or text
    return text[-4000:]


def _missing_inputs(result) -> list[str]:
    from pipeline.tasks_bronze import LandingFile

    missing = []
    worker = getattr(result, "worker", None)
    for task in getattr(worker, "_scheduled_tasks", {}).values() if worker else ():
        if isinstance(task, LandingFile) and not task.complete():
            missing.append(task.output().path)
    return sorted(missing)


def task_summary(url: str, run_id: str) -> list[dict]:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """select task_family, target_table, status, rows_in, rows_out, rows_rejected,
                      extract(epoch from finished_at - started_at)::float, message, error, phase_seconds
               from meta.task_runs where run_id = %s order by started_at""",
            (run_id,),
        )
        keys = (
            "task_family",
            "table",
            "status",
            "rows_in",
            "rows_out",
            "rows_rejected",
            "seconds",
            "message",
            "error",
            "phase_seconds",
        )
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def table_summary(url: str, run_date: date) -> list[dict]:
    """Rows per layer and table for the extract date, with rejects."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """select 'bronze' as layer, 'bronze.' || source_name || '_raw' as table_name,
                      coalesce(sum(rows_loaded), 0)::bigint as rows, coalesce(sum(rows_rejected), 0)::bigint
               from meta.ingested_files where extract_date = %s
               group by source_name order by source_name""",
            (run_date,),
        )
        tables = [dict(zip(("layer", "table", "rows", "rejected"), row, strict=True)) for row in cur.fetchall()]
        for table in registry.silver_tables().values():
            cur.execute(
                sql.SQL(
                    """select (select count(*) from {t}),
                          (select count(*) from silver.quarantine
                           where stage = 'silver' and source_table = %s and extract_date = %s)"""
                ).format(t=sql.Identifier(*table.split("."))),
                (table, run_date),
            )
            rows, rejected = cur.fetchone()
            tables.append({"layer": "silver", "table": table, "rows": rows, "rejected": rejected})
        return tables


def format_summary(result: RunResult) -> str:
    lines = [
        "",
        f"{'Joined run' if result.joined else 'Run'} {result.run_id}: {result.status.upper()} in "
        f"{result.seconds:.2f}s (extract date {result.run_date})",
        "",
        f"  {'table':<32} {'rows':>12} {'rejected':>10}",
    ]
    for row in result.tables:
        lines.append(f"  {row['table']:<32} {row['rows']:>12,} {row['rejected']:>10,}")
    if not result.recorded:
        lines[-1:] = [f"  {result.error}", "  The next run of this date marks this run failed (abandoned)."]
    elif not result.tables:
        lines.append("  (no data loaded for this date)")
    scores = result.quality.get("scores", {})
    if scores:
        lines += quality_lines(result.quality)
        worst = result.quality.get("worst", [])[:5]
        if worst:
            lines.append("  top failing rules:")
            for rule in worst:
                name = f"{rule['table_name']}.{rule['rule_name']}"
                lines.append(
                    f"    {name:<44} {rule['severity']:<5} {rule['rows_failed']:>8,} of {rule['rows_checked']:,} rows"
                )
    ran = [t for t in result.tasks if t["status"] != "running"]
    if ran:
        width = max(len("task"), *(len(t["task_family"]) for t in ran))  # CustomerPurchaseSummary is 23
        lines += ["", f"  {'task':<{width}} {'status':<8} {'in':>10} {'out':>10} {'rejected':>9} {'seconds':>8}"]
        for task in ran:
            lines.append(
                f"  {task['task_family']:<{width}} {task['status']:<8} {task['rows_in'] or 0:>10,} "
                f"{task['rows_out'] or 0:>10,} {task['rows_rejected'] or 0:>9,} {task['seconds'] or 0:>8.2f}"
            )
            # Why a task did nothing, and how the CLV models were fit (plainly, or with which penalty).
            if task["message"] and (task["status"] == "skipped" or task["task_family"] in SUMMARY_MESSAGES):
                lines.append(f"      {task['message']}")
    elif result.success:
        lines.append("\n  Nothing to do: every task for this date is already complete.")
    if not result.success and result.recorded:
        lines += ["", "FAILED:"] + [f"  {line}" for line in (result.error or result.luigi_status).splitlines()]
        if result.log_file:
            lines.append(f"  Log (with Luigi's execution summary and any traceback): {result.log_file}")
    return "\n".join(lines)


def quality_lines(quality: dict) -> list[str]:
    """Score per table and for the run, and beside it the share of the date's input lines quarantined."""
    scores, shares = quality.get("scores", {}), quality.get("shares", {})
    limit = quality.get("max_quarantined_share")
    lines = ["", f"  {'quality score':<32} {'score':>8} {'rows':>12} {'quarantined':>12} {'of lines':>12}"]
    for (table, dimension), (score, rows) in sorted(scores.items()):
        if dimension != "overall":
            continue
        if table == "*":
            lost = sum(share.quarantined for share in shares.values())
            lines_in = sum(share.lines_in for share in shares.values())
            label, breach = "run", False
        else:
            share = shares.get(table)
            lost, lines_in = (share.quarantined, share.lines_in) if share else (0, 0)
            label, breach = table, bool(share and limit is not None and share.exceeds(limit))
        quarantined = f"{lost / lines_in * 100:.2f}%" if lines_in else "n/a"
        lines.append(
            f"  {label:<32} {_shown_percent(score):>8} {rows:>12,} {quarantined:>12} {lines_in:>12,}"
            + ("  over the limit" if breach else "")
        )
    if limit is not None:
        lines.append(
            f"  quarantined: input lines of the date that ended in quarantine (broken or dropped by a "
            f"rule); limit {limit * 100:.2f}% per table"
        )
    return lines


def _shown_percent(value) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.2f}%"


def print_summary(result: RunResult, out=sys.stdout) -> None:
    print(format_summary(result), file=out)
