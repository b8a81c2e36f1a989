"""`metalayer bench`: the pipeline on a fresh database against the raw floor of the same files.

Prints (through `printer`) a table and returns the JSON report: per task seconds, rows and rows/s,
the pipeline time of each run (first task start to last task end), the peak RSS of the Python
processes (each run goes in a fresh process, so generating the data does not count), and the raw
floor measured in the same run (`raw_floor`). With `days` > 1 every later run is an incremental
day, compared with the first (full) run.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from psycopg2 import sql

from pipeline.core import db
from pipeline.core.sources import SOURCES

BENCH_DATABASE = "metalayer_bench"


def machine() -> dict:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory_gib = round(total_kib / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


# The raw floor's typed table: what each text column becomes (text when not listed).
FLOOR_TYPES = {
    "signup_date": "date",
    "updated_at": "timestamptz",
    "order_date": "date",
    "quantity": "integer",
    "unit_price": "numeric(12, 2)",
    "unit_cost": "numeric(12, 2)",
    "list_price": "numeric(12, 2)",
}


def valid_input(cur) -> sql.Composable:
    """pg_input_is_valid(text, type) on PostgreSQL 16 and later; on 15 a stand-in of the same name and meaning
    in pg_temp (a cast in an exception block: slower, so the floor on 15 is somewhat higher)."""
    cur.execute("select current_setting('server_version_num')::int >= 160000")
    if cur.fetchone()[0]:
        return sql.SQL("pg_input_is_valid")
    cur.execute("""
        create or replace function pg_temp.pg_input_is_valid(value text, type_name text) returns boolean
        language plpgsql as $$
        begin
            case type_name  -- FLOOR_TYPES, cast without dynamic SQL
                when 'date' then perform value::date;
                when 'timestamptz' then perform value::timestamptz;
                when 'integer' then perform value::integer;
                when 'numeric(12, 2)' then perform value::numeric(12, 2);
                else execute format('select %L::%s', value, type_name);
            end case;
            return true;
        exception when others then
            return false;
        end $$""")
    return sql.SQL("pg_temp.pg_input_is_valid")


def raw_floor(url: str, landing: Path, extract_date: date) -> dict:
    """What PostgreSQL alone takes to load the same files: per source, a plain COPY of the file (minus the
    lines bronze rejected, which plain COPY cannot load) into an unlogged all-text table, then one typed
    INSERT ... SELECT into an unlogged typed table (a value that does not cast becomes null)."""
    floor: dict = {}
    with db.transaction(url) as conn, conn.cursor() as cur:
        for source in SOURCES.values():
            folder = landing / extract_date.isoformat()
            path = next((folder / name for name in source.file_names() if (folder / name).exists()), None)
            if path is None or path.suffix != ".csv":
                continue
            cur.execute(
                "select line_number from silver.quarantine where stage = 'bronze' and source_file = %s", (str(path),)
            )
            rejected = {row[0] for row in cur.fetchall()}
            clean = path.with_suffix(".floor.csv")
            with path.open("rb") as src, clean.open("wb") as dst:
                for number, line in enumerate(src, start=1):
                    if number not in rejected:
                        dst.write(line)
            text_table = sql.Identifier(f"floor_{source.name}")
            typed_table = sql.Identifier(f"floor_{source.name}_typed")
            text_columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in source.columns)
            typed_columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(FLOOR_TYPES.get(c, "text"))) for c in source.columns
            )
            casts = sql.SQL(", ").join(
                sql.SQL("case when {valid}({c}, {t}) then {c}::{type} end").format(
                    valid=valid_input(cur),
                    c=sql.Identifier(c),
                    t=sql.Literal(FLOOR_TYPES[c]),
                    type=sql.SQL(FLOOR_TYPES[c]),
                )
                if c in FLOOR_TYPES
                else sql.Identifier(c)
                for c in source.columns
            )
            cur.execute(
                sql.SQL(
                    "drop table if exists {t}, {typed}; create unlogged table {t} ({c}); "
                    "create unlogged table {typed} ({tc})"
                ).format(t=text_table, typed=typed_table, c=text_columns, tc=typed_columns)
            )
            conn.commit()
            started = time.perf_counter()
            with clean.open("rb") as fh:
                cur.copy_expert(
                    sql.SQL("copy {} from stdin with (format csv, header true)").format(text_table).as_string(cur),
                    fh,
                    size=4 << 20,
                )
            conn.commit()
            copied = time.perf_counter()
            rows = cur.rowcount
            cur.execute(sql.SQL("insert into {} select {} from {}").format(typed_table, casts, text_table))
            conn.commit()
            seconds = time.perf_counter() - started
            cur.execute(sql.SQL("drop table {}, {}").format(text_table, typed_table))
            conn.commit()
            clean.unlink()
            floor[source.name] = {
                "rows": rows,
                "copy_seconds": round(copied - started, 3),
                "typed_insert_seconds": round(seconds - (copied - started), 3),
                "seconds": round(seconds, 3),
                "rows_per_s": round(rows / seconds) if seconds else None,
            }
    return floor


def peak_rss() -> dict:
    """Peak resident memory of this process and of its largest waited-for child (Luigi's worker
    processes when there are several workers), from the kernel's own high-water marks."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "main_mb": round(_status_kib("VmHWM") / 1024, 1),
        "largest_child_mb": round(children / 1024, 1) if children else None,
    }


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # not Linux: the lifetime peak


def _pipeline_process(run_date: date, landing: Path, workers: int, start_method: str, results) -> None:
    """One run in a fresh process, so that its peak memory is the pipeline's own."""
    from pipeline.operations.runner import run_pipeline

    # A spawned process would spawn Luigi's worker processes too (a new interpreter per task);
    # start them as `metalayer run` does.
    multiprocessing.set_start_method(start_method, force=True)

    result = run_pipeline(
        run_date,
        landing=landing,
        workers=workers,
        trigger="test",
        printer=lambda message: print(message, file=sys.stderr, flush=True),
    )
    results.put((result, {**peak_rss(), "worker_start_method": multiprocessing.get_start_method()}))


def run_pipeline_measured(run_date: date, landing: Path, workers: int):
    """run_pipeline in a new Python process (spawned, nothing inherited); returns (result, peak RSS)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(
        target=_pipeline_process, args=(run_date, landing, workers, multiprocessing.get_start_method(), results)
    )
    process.start()
    try:
        result, peak = results.get()
    finally:
        process.join()
    if process.exitcode:
        raise RuntimeError(f"the pipeline process for {run_date} exited with {process.exitcode}")
    return result, peak


def run_bench(
    orders: int = 1_000_000,
    customers: int = 100_000,
    days: int = 1,
    workers: int = 1,
    keep: bool = False,
    printer: Callable[[str], None] = print,
) -> dict:
    from pipeline.sample.generate import generate

    work = Path(tempfile.mkdtemp(prefix="metalayer-bench-"))
    landing = work / "landing"
    first = date.today() - timedelta(days=days - 1)
    printer(f"generating {orders:,} sales lines, {customers:,} customers, {days} day(s) into {landing}")
    started = time.perf_counter()
    generate(landing, first, days=days, customers=customers, orders=orders)
    generate_seconds = time.perf_counter() - started

    saved_env = {key: os.environ.get(key) for key in ("DATABASE_URL", "METALAYER_HOME")}
    embedded = not os.environ.get("DATABASE_URL")
    try:
        if embedded:
            os.environ["METALAYER_HOME"] = str(work / "home")
            db._embedded_url.cache_clear()
            url = db.Warehouse.from_environment().url
            where = f"new embedded data dir {work / 'home' / 'pgdata'}"
        else:
            url = db.create_database(BENCH_DATABASE, db.Warehouse.from_environment().url)
            where = f"fresh database {BENCH_DATABASE} on DATABASE_URL's server"
        os.environ["DATABASE_URL"] = url
        db.bootstrap(url)
        printer(f"running the pipeline on a {where}")
        runs = []
        for offset in range(days):
            run_date = first + timedelta(days=offset)
            load_before = os.getloadavg()[0]
            result, peak = run_pipeline_measured(run_date, landing, workers)
            if not result.success:
                raise RuntimeError(f"benchmark run for {run_date} failed:\n{result.luigi_summary}")
            runs.append(
                {
                    **_run_report(url, result),
                    "peak_rss": peak,
                    "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                }
            )
        printer("measuring the raw floor (COPY into unlogged text tables, one typed INSERT ... SELECT per source)")
        floor = raw_floor(url, landing, first)
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute("show server_version")
            server_version = cur.fetchone()[0]
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if embedded:
            if not keep:
                os.environ["METALAYER_HOME"] = str(work / "home")
                db.stop_embedded()
                if saved_env["METALAYER_HOME"] is None:
                    os.environ.pop("METALAYER_HOME", None)
                else:
                    os.environ["METALAYER_HOME"] = saved_env["METALAYER_HOME"]
            db._embedded_url.cache_clear()
        elif not keep:
            db.drop_database(BENCH_DATABASE, db.Warehouse.from_environment().url)  # DATABASE_URL restored above
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    first_run = runs[0]
    bronze_vs_floor = {}
    for task in first_run["tasks"]:
        name = task["table"].removeprefix("bronze.").removesuffix("_raw")
        copy_seconds = (task["phase_seconds"] or {}).get("copy")
        if name in floor and task["rows_per_s"] and copy_seconds and floor[name]["copy_seconds"]:
            floor_copy_rate = floor[name]["rows"] / floor[name]["copy_seconds"]
            bronze_vs_floor[name] = {
                "copy_phase": round(task["rows_in"] / copy_seconds / floor_copy_rate, 3),
                "whole_task": round(task["rows_per_s"] / floor_copy_rate, 3),
            }
    floor_seconds = round(sum(source["seconds"] for source in floor.values()), 3)
    report = {
        "command": f"metalayer bench --orders {orders} --customers {customers} --days {days} --workers {workers}",
        "date": date.today().isoformat(),
        "machine": machine(),
        "postgres": server_version,
        "database": where,
        "generate_seconds": round(generate_seconds, 3),
        "summary": {
            "pipeline_seconds": first_run["pipeline_seconds"],
            "raw_floor_seconds": floor_seconds,
            "pipeline_vs_floor": round(first_run["pipeline_seconds"] / floor_seconds, 2) if floor_seconds else None,
            "peak_rss_mb": max(_peak_mb(run["peak_rss"]) for run in runs),
            "incremental_days": [
                {
                    "run_date": run["run_date"],
                    "pipeline_seconds": run["pipeline_seconds"],
                    "vs_full_run": round(run["pipeline_seconds"] / first_run["pipeline_seconds"], 3)
                    if first_run["pipeline_seconds"]
                    else None,
                }
                for run in runs[1:]
            ],
        },
        "runs": runs,
        "raw_floor": floor,
        "bronze_rate_vs_floor": bronze_vs_floor,
        "kept": str(work) if keep else None,
    }
    printer(format_report(report))
    return report


def _peak_mb(peak: dict) -> float:
    return max(peak["main_mb"], peak["largest_child_mb"] or 0.0)


def format_report(report: dict) -> str:
    """The report as a plain-text table: one block per run, then the floor and the summary."""
    lines = [
        f"{report['command']}  ({report['date']}, {report['machine']['cores']} cores, PostgreSQL {report['postgres']})"
    ]
    for run in report["runs"]:
        peak = run["peak_rss"]
        lines += [
            "",
            f"run {run['run_date']}: pipeline {run['pipeline_seconds']:.2f} s, peak RSS "
            f"{_peak_mb(peak):.0f} MB (main {peak['main_mb']:.0f} MB"
            + (f", largest worker {peak['largest_child_mb']:.0f} MB" if peak["largest_child_mb"] else "")
            + f"), load {run['load_average_1min'][0]} -> {run['load_average_1min'][1]}",
            f"  {'task':<22} {'seconds':>8} {'rows in':>11} {'rows/s':>10}  phases",
        ]
        for task in run["tasks"]:
            phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in (task["phase_seconds"] or {}).items())
            rate = f"{task['rows_per_s']:,}" if task["rows_per_s"] else ""
            lines.append(
                f"  {task['task']:<22} {task['seconds']:>8.3f} {task['rows_in'] or 0:>11,} {rate:>10}  {phases}"
            )
    lines += ["", "raw floor (COPY into an unlogged text table + one typed INSERT ... SELECT):"]
    for name, source in report["raw_floor"].items():
        lines.append(
            f"  {name:<22} {source['seconds']:>8.3f} {source['rows']:>11,} "
            f"{source['rows_per_s'] or 0:>10,}  copy {source['copy_seconds']:.2f}, "
            f"typed insert {source['typed_insert_seconds']:.2f}"
        )
    summary = report["summary"]
    lines += [
        "",
        f"pipeline {summary['pipeline_seconds']:.2f} s = {summary['pipeline_vs_floor']}x the raw floor "
        f"({summary['raw_floor_seconds']:.2f} s); peak RSS {summary['peak_rss_mb']:.0f} MB",
    ]
    for day in summary["incremental_days"]:
        lines.append(
            f"incremental day {day['run_date']}: {day['pipeline_seconds']:.2f} s = "
            f"{day['vs_full_run'] * 100:.1f}% of the full run"
        )
    return "\n".join(lines)


def _run_report(url: str, result) -> dict:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """select extract(epoch from max(finished_at) - min(started_at))::float
               from meta.task_runs where run_id = %s""",
            (result.run_id,),
        )
        pipeline_seconds = cur.fetchone()[0] or 0.0
        # Per layer: first task start to last task end (with several workers, tasks overlap).
        cur.execute(
            """select split_part(target_table, '.', 1),
                      extract(epoch from max(finished_at) - min(started_at))::float
               from meta.task_runs where run_id = %s group by 1""",
            (result.run_id,),
        )
        layer_wall = {layer: round(seconds, 3) for layer, seconds in cur.fetchall()}
    tasks = []
    for task in result.tasks:
        seconds = round(task["seconds"] or 0.0, 3)  # rows/s from the seconds shown
        rows = task["rows_in"] or 0
        tasks.append(
            {
                "task": task["task_family"],
                "table": task["table"],
                "status": task["status"],
                "seconds": round(seconds, 3),
                "rows_in": rows,
                "rows_out": task["rows_out"],
                "rows_per_s": round(rows / seconds) if seconds else None,
                "phase_seconds": task["phase_seconds"],
            }
        )
    layers: dict[str, float] = {}
    for task in tasks:
        layer = task["table"].split(".", 1)[0]
        layers[layer] = round(layers.get(layer, 0.0) + task["seconds"], 3)
    return {
        "run_date": result.run_date.isoformat(),
        "pipeline_seconds": round(pipeline_seconds, 3),
        "wall_seconds": round(result.seconds, 3),
        "task_seconds_per_layer": layers,
        "wall_seconds_per_layer": layer_wall,
        "tasks": tasks,
    }
