"""Operations: reruns with marker invalidation, backfills, retention, the cron entry.

The CLI (`metalayer rerun | backfill | purge | schedule`) and the console call
these functions; they never touch Luigi's internals beyond walking the graph.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import luigi
from psycopg2 import sql

from pipeline import registry
from pipeline.base import WarehouseTask
from pipeline.core import db
from pipeline.core.config import landing_dir as default_landing_dir
from pipeline.core.config import operations, postgres
from pipeline.core.runs import is_running  # noqa: F401 - part of this module's interface (the console uses it)
from pipeline.master import MasterTask
from pipeline.operations.runner import Printer, RunResult, run_pipeline
from pipeline.tasks_gold import IncrementalAggregate

LAYER_NAMES = ("bronze", "silver", "gold")
WHOLE_GRAPH = ("MasterTask", "all")


class UsageError(ValueError):
    """Arguments that can not work (the CLI prints the message and exits 2)."""


class UnknownTask(UsageError):
    pass


def date_graph(run_date: date, landing: str | Path | None = None) -> dict[str, tuple[WarehouseTask, set[str]]]:
    """The date's warehouse tasks: family -> (task, families it requires transitively, same date only)."""
    landing_path = str(Path(landing).resolve() if landing else default_landing_dir())
    root = MasterTask(date=run_date, landing_dir=landing_path)
    tasks: dict[str, WarehouseTask] = {}
    direct: dict[str, set[str]] = {}

    def visit(task: luigi.Task) -> None:
        for dep in luigi.task.flatten(task.requires()):
            if not isinstance(dep, WarehouseTask) or dep.date != run_date:
                continue  # landing files, and earlier dates' tasks that this date chains to
            if dep.task_family not in tasks:
                tasks[dep.task_family] = dep
                direct[dep.task_family] = set()
                visit(dep)
            if isinstance(task, WarehouseTask):
                direct[task.task_family].add(dep.task_family)

    visit(root)

    def upstream(family: str, seen: set[str]) -> set[str]:
        for dep in direct[family] - seen:
            seen.add(dep)
            upstream(dep, seen)
        return seen

    return {family: (task, upstream(family, set())) for family, task in tasks.items()}


def layer_of(task: WarehouseTask) -> str:
    return task.layer


def select_tasks(
    name: str, run_date: date, landing: str | Path | None = None, *, downstream: bool = True
) -> list[WarehouseTask]:
    """The tasks a rerun of `name` (a task family, a layer, or MasterTask) invalidates, in graph order."""
    graph = date_graph(run_date, landing)
    families = {family.lower(): family for family in graph}
    if name in WHOLE_GRAPH or name.lower() in ("mastertask", "all"):
        chosen = set(graph)
    elif name.lower() in LAYER_NAMES:
        chosen = {family for family, (task, _) in graph.items() if layer_of(task) == name.lower()}
    elif name.lower() in families:
        chosen = {families[name.lower()]}
    else:
        raise UnknownTask(
            f"unknown task {name!r}: expected MasterTask, a layer ({', '.join(LAYER_NAMES)}) or one "
            f"of {', '.join(sorted(graph))}"
        )
    if downstream:
        chosen |= {family for family, (_, upstream) in graph.items() if upstream & chosen}
    ordered = sorted(chosen, key=lambda family: (len(graph[family][1]), family))
    return [graph[family][0] for family in ordered]


def invalidate(tasks: list[WarehouseTask], url: str, *, full_refresh: bool = False) -> list[str]:
    """Delete the tasks' completion markers in one transaction; returns the task ids that had one.

    With full_refresh, the incremental gold tables among the tasks also lose
    their watermark, so that their next run recomputes them from the whole fact.
    """
    marker_table = sql.Identifier(*postgres().marker_table.split("."))
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("delete from {} where update_id = any(%s) returning update_id").format(marker_table),
            ([task.task_id for task in tasks],),
        )
        removed = sorted(row[0] for row in cur.fetchall())
        if full_refresh:
            tables = [task.table for task in tasks if isinstance(task, IncrementalAggregate)]
            cur.execute("delete from gold.fact_sales_watermarks where consumer = any(%s)", (tables,))
        return removed


def rerun(
    name: str,
    run_date: date,
    *,
    downstream: bool = True,
    landing: str | Path | None = None,
    trigger: str = "cli",
    workers: int = 1,
    scheduler_url: str | None = None,
    run_id: str | None = None,
    wait: bool = False,
    full_refresh: bool = False,
    printer: Printer | None = None,
) -> RunResult:
    """Invalidate `name` (and by default everything downstream of it) for the date, then run MasterTask.

    The invalidation happens under the date's run lock, so it can not pull
    markers from under a run in progress. full_refresh makes the incremental
    gold tables among them recompute from the whole fact instead of catching up.
    """
    tasks = select_tasks(name, run_date, landing, downstream=downstream)

    def prepare(url: str, _run_id: str, say: Printer) -> None:
        removed = invalidate(tasks, url, full_refresh=full_refresh)
        say(
            f"rerun {name} for {run_date}{'' if downstream else ' (no downstream)'}"
            f"{' (full refresh)' if full_refresh else ''}: "
            f"{len(removed)} of {len(tasks)} markers removed: " + ", ".join(task.task_family for task in tasks)
        )

    return run_pipeline(
        run_date,
        landing=landing,
        workers=workers,
        scheduler_url=scheduler_url,
        trigger=trigger,
        printer=printer,
        run_id=run_id,
        wait=wait,
        prepare=prepare,
        also=lambda new_run_id: [task.clone(run_id=new_run_id) for task in tasks],
    )


@dataclass
class BackfillResult:
    runs: list[RunResult] = field(default_factory=list)
    missing: list[date] = field(default_factory=list)
    stopped_at: date | None = None

    @property
    def success(self) -> bool:
        return self.stopped_at is None and all(run.success for run in self.runs)


def backfill(
    start: date,
    end: date,
    *,
    on_missing: str = "stop",
    landing: str | Path | None = None,
    trigger: str = "backfill",
    workers: int = 1,
    scheduler_url: str | None = None,
    stop_on_failure: bool = True,
    printer: Printer | None = None,
) -> BackfillResult:
    """Run each date from start to end in order. A date without a landing folder stops the backfill
    (on_missing='stop', the default: later dates chain to it) or is skipped (on_missing='skip')."""
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    if on_missing not in ("stop", "skip"):
        raise UsageError(f"on_missing must be 'stop' or 'skip', not {on_missing!r}")
    landing_path = Path(landing).resolve() if landing else default_landing_dir()
    say = printer or (lambda message: None)
    result = BackfillResult()
    day = start
    while day <= end:
        if not (landing_path / day.isoformat()).is_dir():
            result.missing.append(day)
            if on_missing == "stop":
                say(
                    f"backfill: no extract folder {landing_path / day.isoformat()}; stopping "
                    f"(use --on-missing skip to go on without it)"
                )
                result.stopped_at = day
                return result
            say(f"backfill: no extract folder {landing_path / day.isoformat()}; skipped")
        else:
            run = run_pipeline(
                day,
                landing=landing_path,
                workers=workers,
                scheduler_url=scheduler_url,
                trigger=trigger,
                printer=printer,
            )
            result.runs.append(run)
            say(f"backfill: {day} {run.status} in {run.seconds:.1f}s (run {run.run_id})")
            if not run.success and stop_on_failure:
                result.stopped_at = day
                return result
        day += timedelta(days=1)
    return result


@dataclass
class PurgeResult:
    cutoff: date
    deleted: dict[str, int]


def purge(
    keep_days: int | None = None, *, today: date | None = None, warehouse: db.Warehouse | None = None
) -> PurgeResult:
    """Remove bronze loads, quarantine rows and run metadata of extract dates older than the window.

    Silver, gold and the completion markers stay: a purged date is not
    reprocessed from bronze, but its markers still say it is done.
    """
    keep_days = operations().retention_days if keep_days is None else keep_days
    if keep_days < 1:
        raise UsageError(f"--keep-days must be at least 1, not {keep_days}")
    cutoff = (today or date.today()) - timedelta(days=keep_days)
    with (warehouse or db.Warehouse.from_environment()).transaction() as conn, conn.cursor() as cur:
        cur.execute(purge_statement(), {"cutoff": cutoff})
        deleted = dict(cur.fetchall())
    return PurgeResult(cutoff=cutoff, deleted=deleted)


def purge_statement() -> sql.Composed:
    """sql/ops/purge.sql with a delete, and its count, for each bronze rows table of the registry."""
    tables = registry.bronze_row_tables()
    names = [sql.Identifier(f"deleted_{index}") for index in range(len(tables))]
    deletes = sql.SQL(",\n").join(
        sql.SQL("{} as (delete from {} where _load_id in (select load_id from old_loads) returning 1)").format(
            name, sql.Identifier(*table.split("."))
        )
        for name, table in zip(names, tables, strict=True)
    )
    counts = sql.SQL("").join(
        sql.SQL("select {}, count(*) from {} union all\n").format(sql.Literal(table), name)
        for name, table in zip(names, tables, strict=True)
    )
    return db.sql_statement("ops/purge.sql").format(bronze_deletes=deletes, bronze_counts=counts)


CRON_TAG = "# metalayer-daily"


def cron_entry(
    schedule: str | None = None,
    *,
    home: Path | None = None,
    landing: Path | None = None,
    executable: Path | None = None,
    scheduler_url: str | None = None,
) -> str:
    """One crontab line: the day's run with trigger cron, appended to a log under $METALAYER_HOME/logs."""
    schedule = schedule or operations().cron
    fields = schedule.split()
    if len(fields) != 5:
        raise UsageError(f"not a five-field cron schedule: {schedule!r}")
    home = (home or db.metalayer_home()).resolve()
    landing = (landing or default_landing_dir()).resolve()
    executable = executable or Path(sys.executable).with_name("metalayer")
    command = (
        f"cd {shlex.quote(str(db.REPO_ROOT))} && METALAYER_HOME={shlex.quote(str(home))} "
        f"METALAYER_LANDING_DIR={shlex.quote(str(landing))} {shlex.quote(str(executable))} run --trigger cron "
        + (f"--scheduler-url {shlex.quote(scheduler_url)} " if scheduler_url else "")
        + f">> {shlex.quote(str(home / 'logs' / 'cron.log'))} 2>&1"
    )
    return f"{' '.join(fields)} {command} {CRON_TAG}"


def merge_crontab(existing: str, entry: str) -> str:
    """The crontab with MetaLayer's line replaced (or added); other lines are kept as they are."""
    kept = [line for line in existing.splitlines() if not line.rstrip().endswith(CRON_TAG)]
    return "\n".join([*kept, entry]) + "\n"


def install_crontab(entry: str) -> None:
    crontab = shutil.which("crontab")
    if not crontab:
        raise RuntimeError(
            "`crontab` not found: install cron (Debian: apt-get install cron), or add the line "
            "printed by `metalayer schedule` to your scheduler by hand"
        )
    current = subprocess.run([crontab, "-l"], capture_output=True, text=True, check=False)  # noqa: S603
    existing = current.stdout if current.returncode == 0 else ""
    subprocess.run([crontab, "-"], input=merge_crontab(existing, entry), text=True, check=True)  # noqa: S603
