"""`metalayer bench`: the pipeline on a fresh database against the raw COPY floor of the same files."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from psycopg2 import sql

from pipeline import db
from pipeline.sources import SOURCES

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
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "python": platform.python_version(),
            "os": platform.platform()}


def raw_copy_floor(url: str, landing: Path, extract_date: date) -> dict:
    """Plain COPY of each file (minus the lines bronze rejected) into an unlogged all-text table."""
    floor = {}
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select version()")
        for source in SOURCES.values():
            path = next((landing / extract_date.isoformat() / name for name in source.file_names()
                         if (landing / extract_date.isoformat() / name).exists()), None)
            if path is None or path.suffix != ".csv":
                continue
            cur.execute("select line_number from silver.quarantine where stage = 'bronze' and source_file = %s",
                        (str(path),))
            rejected = {row[0] for row in cur.fetchall()}
            clean = path.with_suffix(".floor.csv")
            with path.open("rb") as src, clean.open("wb") as dst:
                for number, line in enumerate(src, start=1):
                    if number not in rejected:
                        dst.write(line)
            table = sql.Identifier(f"floor_{source.name}")
            columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in source.columns)
            cur.execute(sql.SQL("drop table if exists {t}; create unlogged table {t} ({c})").format(t=table,
                                                                                                 c=columns))
            conn.commit()
            started = time.perf_counter()
            with clean.open("rb") as fh:
                cur.copy_expert(sql.SQL("copy {} from stdin with (format csv, header true)").format(table)
                                .as_string(cur), fh, size=4 << 20)
            conn.commit()
            seconds = time.perf_counter() - started
            rows = cur.rowcount
            cur.execute(sql.SQL("drop table {}").format(table))
            conn.commit()
            clean.unlink()
            floor[source.name] = {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}
    return floor


def run_bench(orders: int = 1_000_000, customers: int = 100_000, days: int = 1, workers: int = 1,
              keep: bool = False, printer: Callable[[str], None] = print) -> dict:
    from pipeline.generate import generate
    from pipeline.runner import run_pipeline

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
            url = db.database_url()
            where = f"new embedded data dir {work / 'home' / 'pgdata'}"
        else:
            url = db.create_database(BENCH_DATABASE)
            where = f"fresh database {BENCH_DATABASE} on DATABASE_URL's server"
        os.environ["DATABASE_URL"] = url
        db.bootstrap(url)
        printer(f"running the pipeline on a {where}")
        runs = []
        for offset in range(days):
            run_date = first + timedelta(days=offset)
            result = run_pipeline(run_date, landing=landing, workers=workers, trigger="test", printer=printer)
            if not result.success:
                raise RuntimeError(f"benchmark run for {run_date} failed:\n{result.luigi_summary}")
            runs.append(_run_report(url, result))
        printer("measuring the raw COPY floor")
        floor = raw_copy_floor(url, landing, first)
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
            db.drop_database(BENCH_DATABASE)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    first_run = runs[0]
    bronze_vs_floor = {}
    for task in first_run["tasks"]:
        name = task["table"].removeprefix("bronze.").removesuffix("_raw")
        copy_seconds = (task["phase_seconds"] or {}).get("copy")
        if name in floor and task["rows_per_s"] and copy_seconds:
            floor_rate = floor[name]["rows_per_s"]
            bronze_vs_floor[name] = {
                "copy_phase": round(task["rows_in"] / copy_seconds / floor_rate, 3),
                "whole_task": round(task["rows_per_s"] / floor_rate, 3),
            }
    return {
        "command": f"metalayer bench --orders {orders} --customers {customers} --days {days} --workers {workers}",
        "date": date.today().isoformat(),
        "machine": machine(),
        "postgres": server_version,
        "database": where,
        "generate_seconds": round(generate_seconds, 3),
        "runs": runs,
        "raw_copy_floor": floor,
        "bronze_rate_vs_floor": bronze_vs_floor,
        "kept": str(work) if keep else None,
    }


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
        seconds = task["seconds"] or 0.0
        rows = task["rows_in"] or 0
        tasks.append({"task": task["task_family"], "table": task["table"], "status": task["status"],
                      "seconds": round(seconds, 3), "rows_in": rows, "rows_out": task["rows_out"],
                      "rows_per_s": round(rows / seconds) if seconds else None,
                      "phase_seconds": task["phase_seconds"]})
    layers: dict[str, float] = {}
    for task in tasks:
        layer = task["table"].split(".", 1)[0]
        layers[layer] = round(layers.get(layer, 0.0) + task["seconds"], 3)
    return {"run_date": result.run_date.isoformat(), "pipeline_seconds": round(pipeline_seconds, 3),
            "wall_seconds": round(result.seconds, 3), "task_seconds_per_layer": layers,
            "wall_seconds_per_layer": layer_wall, "tasks": tasks}
