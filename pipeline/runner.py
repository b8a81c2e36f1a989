"""Run the graph for a date with bookkeeping, progress and a summary.

The CLI, the console and the tests call these functions; none of them talks to
Luigi directly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import luigi
from luigi.execution_summary import LuigiStatusCode
from psycopg2 import sql

from pipeline import db
from pipeline.base import WarehouseTask
from pipeline.config import landing_dir as default_landing_dir
from pipeline.master import MasterTask
from pipeline.runs import finish_run, start_run
from pipeline.tasks_silver import quality_summary

Printer = Callable[[str], None]


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


class _Progress:
    """Prints one line as each warehouse task starts and ends (in whichever process runs it)."""

    printer: Printer | None = None
    started: dict[str, float] = {}

    @classmethod
    def on_start(cls, task: WarehouseTask) -> None:
        cls.started[task.task_id] = time.perf_counter()
        if cls.printer:
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
    _Progress.on_end(task, "FAIL")
    if _Progress.printer:
        _Progress.printer(f"       {type(exception).__name__}: {exception}")


LAYERS = ("bronze", "silver")


def layer_targets(layer: str, run_date: date, run_id: str, landing_dir: str) -> list[luigi.Task]:
    """The tasks that complete a layer (and everything before it) for a date."""
    from pipeline.tasks_bronze import BRONZE_TASKS
    from pipeline.tasks_silver import SilverQualityGate

    common = {"date": run_date, "run_id": run_id, "landing_dir": landing_dir}
    if layer == "bronze":
        return [task(**common) for task in BRONZE_TASKS]
    if layer == "silver":
        return [SilverQualityGate(**common)]
    raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")


def run_pipeline(run_date: date, *, landing: str | Path | None = None, workers: int = 1,
                 scheduler_url: str | None = None, trigger: str = "cli",
                 printer: Printer | None = None, upto: str | None = None) -> RunResult:
    """Build MasterTask (or the layers up to `upto`) for the date under a new meta.pipeline_runs row.

    Never raises for task failures: the result says what happened.
    """
    url = db.ensure_bootstrapped()
    landing_path = str(Path(landing).resolve() if landing else default_landing_dir())
    run_id = start_run(url, run_date, trigger, landing_dir=landing_path, workers=workers,
                       scheduler=scheduler_url or "local")
    targets = (layer_targets(upto, run_date, run_id, landing_path) if upto
               else [MasterTask(date=run_date, run_id=run_id, landing_dir=landing_path)])
    if printer:
        printer(f"MetaLayer run {run_id}: extract date {run_date}, landing {landing_path}, "
                f"{workers} worker(s), scheduler {scheduler_url or 'local'}")
    _Progress.printer = printer
    started = time.perf_counter()
    try:
        options = {"scheduler_url": scheduler_url} if scheduler_url else {"local_scheduler": True}
        result = luigi.build(targets, workers=workers, detailed_summary=True, log_level="WARNING", **options)
    except Exception as exc:
        finish_run(url, run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        _Progress.printer = None
    seconds = time.perf_counter() - started
    success = result.status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
    error = None if success else _failure_text(result)
    finish_run(url, run_id, "success" if success else "failed", error)
    return RunResult(
        run_id=run_id, run_date=run_date, success=success, status="success" if success else "failed",
        seconds=seconds, luigi_status=result.status.name, luigi_summary=result.summary_text,
        tasks=task_summary(url, run_id), tables=table_summary(url, run_date),
        quality=quality_summary(url, run_date), error=error,
    )


def _failure_text(result) -> str:
    text = result.summary_text or ""
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
        keys = ("task_family", "table", "status", "rows_in", "rows_out", "rows_rejected", "seconds", "message",
                "error", "phase_seconds")
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
        for name in ("customers", "products", "sales"):
            cur.execute(sql.SQL(
                """select (select count(*) from {t}),
                          (select count(*) from silver.quarantine
                           where stage = 'silver' and source_table = %s and extract_date = %s)""").format(
                t=sql.Identifier("silver", name)), (f"silver.{name}", run_date))
            rows, rejected = cur.fetchone()
            tables.append({"layer": "silver", "table": f"silver.{name}", "rows": rows, "rejected": rejected})
        return tables


def format_summary(result: RunResult) -> str:
    lines = [
        "",
        f"Run {result.run_id}: {result.status.upper()} in {result.seconds:.2f}s (extract date {result.run_date})",
        "",
        f"  {'table':<32} {'rows':>12} {'rejected':>10}",
    ]
    for row in result.tables:
        lines.append(f"  {row['table']:<32} {row['rows']:>12,} {row['rejected']:>10,}")
    if not result.tables:
        lines.append("  (no data loaded for this date)")
    scores = result.quality.get("scores", {})
    if scores:
        lines += ["", f"  {'quality score':<32} {'score':>8} {'rows':>12}"]
        for (table, dimension), (score, rows) in sorted(scores.items()):
            if dimension == "overall":
                label = "run" if table == "*" else table
                shown = "n/a" if score is None else f"{float(score) * 100:.2f}%"
                lines.append(f"  {label:<32} {shown:>8} {rows:>12,}")
        worst = result.quality.get("worst", [])[:5]
        if worst:
            lines.append("  top failing rules:")
            for rule in worst:
                name = f"{rule['table_name']}.{rule['rule_name']}"
                lines.append(f"    {name:<44} {rule['severity']:<5} {rule['rows_failed']:>8,} of "
                             f"{rule['rows_checked']:,} rows")
    ran = [t for t in result.tasks if t["status"] != "running"]
    if ran:
        lines += ["", f"  {'task':<20} {'status':<8} {'in':>10} {'out':>10} {'rejected':>9} {'seconds':>8}"]
        for task in ran:
            lines.append(
                f"  {task['task_family']:<20} {task['status']:<8} {task['rows_in'] or 0:>10,} "
                f"{task['rows_out'] or 0:>10,} {task['rows_rejected'] or 0:>9,} {task['seconds'] or 0:>8.2f}")
            if task["status"] == "skipped" and task["message"]:
                lines.append(f"      {task['message']}")
            if task["error"]:
                lines.append("      " + task["error"].splitlines()[0])
    elif result.success:
        lines.append("\n  Nothing to do: every task for this date is already complete.")
    if not result.success:
        if result.luigi_status == "MISSING_EXT":
            lines += ["", f"  {result.error}"]
        lines += ["", "Luigi's summary:", result.luigi_summary]
    return "\n".join(lines)


def print_summary(result: RunResult, out=sys.stdout) -> None:
    print(format_summary(result), file=out)
