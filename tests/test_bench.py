"""`metalayer bench` on a small scale: the report's figures checked against their definitions and the manifest."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.bench import BENCH_DATABASE, format_report, peak_rss, run_bench
from pipeline.core import db


def _allocate_and_report(megabytes: int, results) -> None:
    block = bytearray(megabytes * 1024 * 1024)  # zero pages: write one byte per page to make them resident
    block[::4096] = b"x" * len(block[::4096])
    results.put(peak_rss())


def _peak_of_a_process_that_allocates(megabytes: int) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_allocate_and_report, args=(megabytes, results))
    process.start()
    peak = results.get()
    process.join()
    return peak


def test_peak_rss_is_the_process_high_water_mark():
    baseline, allocating = _peak_of_a_process_that_allocates(0), _peak_of_a_process_that_allocates(300)
    assert 290 <= allocating["main_mb"] - baseline["main_mb"] <= 340
    assert baseline["largest_child_mb"] is None  # the spawned process started none


@pytest.fixture
def bench_report(warehouse):
    """A small benchmark on DATABASE_URL's server (a fresh database of its own), kept for inspection."""
    messages: list[str] = []
    report = run_bench(orders=3000, customers=1500, days=2, workers=1, keep=True, printer=messages.append)
    yield report, messages
    db.drop_database(BENCH_DATABASE, warehouse)
    shutil.rmtree(report["kept"], ignore_errors=True)


def test_bench_reports_tasks_pipeline_floor_memory_and_the_incremental_day(bench_report):
    report, messages = bench_report
    json.dumps(report, default=str)  # what the CLI prints
    work = report["kept"]
    assert work and report["database"].startswith("fresh database")

    full, incremental = report["runs"]
    first = date.today() - timedelta(days=1)
    assert (full["run_date"], incremental["run_date"]) == (first.isoformat(), date.today().isoformat())
    for run in report["runs"]:
        tasks = {task["task"]: task for task in run["tasks"]}
        assert {"ErpSalesRaw", "SilverSales", "FactSales", "AggDailySales", "CustomerClv"} <= set(tasks)
        for task in run["tasks"]:
            assert task["status"] in ("success", "skipped")
            if task["seconds"] and task["rows_in"]:
                assert task["rows_per_s"] == round(task["rows_in"] / task["seconds"])
        # First task start to last task end: at least the longest task, at most the run's wall time.
        assert max(t["seconds"] for t in run["tasks"]) <= run["pipeline_seconds"] <= run["wall_seconds"]
        assert 50 < run["peak_rss"]["main_mb"] < 2000  # a Python process with pandas, Luigi and psycopg2
        # Luigi's worker processes start as under `metalayer run` (a spawned run would spawn each task).
        assert run["peak_rss"]["worker_start_method"] == multiprocessing.get_start_method()

    folder = Path(work) / "landing" / first.isoformat()
    files = json.loads((folder / "manifest.json").read_text())["files"]
    floor = report["raw_floor"]
    assert floor["erp_sales"]["rows"] == files["erp_sales.csv"]["loadable_records"]
    assert floor["crm_customers"]["rows"] == files["crm_customers.csv"]["loadable_records"]
    for source in floor.values():
        assert source["seconds"] >= source["copy_seconds"] >= 0 and source["typed_insert_seconds"] >= 0

    summary = report["summary"]
    floor_seconds = sum(source["seconds"] for source in floor.values())
    assert summary["raw_floor_seconds"] == round(floor_seconds, 3)
    assert summary["pipeline_vs_floor"] == round(full["pipeline_seconds"] / summary["raw_floor_seconds"], 2)
    assert summary["incremental_days"] == [
        {
            "run_date": incremental["run_date"],
            "pipeline_seconds": incremental["pipeline_seconds"],
            "vs_full_run": round(incremental["pipeline_seconds"] / full["pipeline_seconds"], 3),
        }
    ]
    # The incremental day's aggregates read the affected customers' lines, not the whole fact.
    fact_lines = next(t["rows_in"] for t in full["tasks"] if t["task"] == "FactSales")
    day = {t["task"]: t for t in incremental["tasks"]}
    assert 0 < day["AggDailySales"]["rows_in"] < fact_lines / 5

    table = format_report(report)
    assert table == messages[-1]
    assert "raw floor" in table and "incremental day" in table and "AggMonthlySales" in table
