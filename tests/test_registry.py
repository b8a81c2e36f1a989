"""The table registry (pipeline/registry.py): one list of tasks, every table list derived from it."""

from __future__ import annotations

import inspect
from datetime import date

import luigi

from pipeline import registry
from pipeline.base import WarehouseTask
from pipeline.core.db import REPO_ROOT


def test_every_table_of_the_warehouse_schemas_has_a_task_and_every_task_a_model_file(query):
    """Fails when a table of bronze, silver or gold is written by no task, when a task names a table the
    schema does not make, or when its model file is missing. (Views over the tables, such as
    gold.fact_sales_by_region, are the schema's: no task writes them.)"""
    relations = {
        f"{schema}.{name}"
        for schema, name in query(
            """select table_schema, table_name from information_schema.tables
               where table_schema in ('bronze', 'silver', 'gold') and table_type = 'BASE TABLE'"""
        )
    }
    known = {table.name for table in registry.tables()}
    assert relations - known == set(), "tables without a task: declare them as a task's table, writes or state"
    missing = {name for name in known if query("select to_regclass(%s)", (name,)) == [(None,)]}
    assert missing == set(), "tables the registry names but the schema does not make"
    for task in registry.TASKS:
        assert task.layer in registry.LAYERS and task.table, task
        assert (REPO_ROOT / task.model).is_file(), (task.__name__, task.model)
        assert task.table.split(".")[0] in {"bronze": ("bronze",), "silver": ("silver", "meta")}.get(
            task.layer, ("gold", "meta")
        ), task


def test_every_warehouse_task_class_is_in_the_registry():
    """A task class added to a pipeline module but not to registry.TASKS fails here (MasterTask, the SLA
    and the console would not know it)."""
    import pipeline  # noqa: F401 - imports every task module

    defined = {
        cls
        for cls in luigi.task_register.Register._reg
        if inspect.isclass(cls)
        and issubclass(cls, WarehouseTask)
        and cls.__module__.startswith("pipeline.")
        and isinstance(cls.__dict__.get("table", getattr(cls, "table", "")), str)
        and cls.table
    }
    assert defined == set(registry.TASKS)
    assert list(registry.TASKS) == sorted(registry.TASKS, key=registry.TASKS.index)
    for position, task in enumerate(registry.TASKS):  # build order: what a task requires comes before it
        required = luigi.task.flatten(task(date=date(2026, 1, 2), landing_dir="/nonexistent").requires())
        for other in required:
            if type(other) in registry.TASKS and type(other) is not task:
                assert registry.TASKS.index(type(other)) < position, (task.__name__, type(other).__name__)


def test_the_lists_derive_from_the_registry():
    from pipeline.master import MasterTask
    from pipeline.operations import runner, sla

    day = date(2026, 1, 2)
    master = {type(task) for task in MasterTask(date=day).requires()}
    assert master == set(registry.tasks("gold")) | set(registry.tasks("anomalies"))
    assert {type(t) for t in sla.layer_tasks("bronze", day)} == set(registry.tasks("bronze"))
    assert {type(t) for t in sla.layer_tasks("run", day)} == set(registry.tasks("gold"))
    assert {type(t) for t in runner.layer_targets("silver", day, "r", "")} == set(registry.tasks("silver"))
    assert registry.bronze_row_tables() == [
        "bronze.crm_customers_raw_rows",
        "bronze.erp_products_raw_rows",
        "bronze.erp_sales_raw_rows",
    ]
    assert registry.silver_tables() == {
        "crm_customers": "silver.customers",
        "erp_products": "silver.products",
        "erp_sales": "silver.sales",
    }
    assert registry.task_of("gold.clv_model").__name__ == "CustomerClv"


def test_rows_per_layer_counts_every_table_users_read_as_the_reader(warehouse, query):
    """The console's rows per layer lists the registry's silver and gold tables, counted even where the
    read-only role may not read the rows (silver.quarantine, silver.customer_versions)."""
    from pipeline.core import db

    query(
        "insert into gold.dim_date (date_key, date, day_of_week, iso_week, month, quarter, year, is_weekend, "
        "month_start) values (20260102, '2026-01-02', 5, 1, 1, 1, 2026, false, '2026-01-01')"
    )
    tables = registry.data_tables("silver", "gold")
    assert "silver.quarantine" in tables and "gold.fact_sales_watermarks" not in tables
    text = db.sql_text("console/rows_per_layer.sql")
    with db.transaction(db.reader_url(warehouse)) as conn, conn.cursor() as cur:
        cur.execute(text, {"tables": tables})
        rows = {table: (layer, count) for layer, table, count in cur.fetchall()}
    assert set(rows) == set(tables)
    assert rows["gold.dim_date"] == ("gold", 1) and rows["silver.customer_versions"] == ("silver", 0)
    with db.transaction(db.reader_url(warehouse)) as conn, conn.cursor() as cur:
        try:
            cur.execute("select * from console.table_rows(array['meta.task_runs'])")
        except Exception as exc:  # noqa: BLE001
            assert "bronze, silver and gold only" in str(exc)
        else:
            raise AssertionError("console.table_rows counted a table outside the warehouse schemas")


def test_the_chains_that_end_last_run_first(warehouse, query, reliability_landing):
    """One worker runs the customers' chain before the sales load (silver sales checks signup dates), and
    the purchase summary and CLV straight after the fact, before the aggregates: with two workers the
    longest chain starts first and the aggregates fill the other worker."""
    from pipeline.operations.runner import run_pipeline

    result = run_pipeline(date(2026, 11, 20), landing=reliability_landing, trigger="test", workers=1)
    assert result.success, result.luigi_summary
    order = [
        family
        for (family,) in query(
            "select task_family from meta.task_runs where run_id = %s order by started_at", (result.run_id,)
        )
    ]
    assert order.index("CrmCustomersRaw") < order.index("ErpSalesRaw")
    assert order.index("SilverCustomers") < order.index("ErpSalesRaw")
    fact = order.index("FactSales")
    assert order[fact + 1 : fact + 3] == ["CustomerPurchaseSummary", "CustomerClv"]
    aggregates = [t.__name__ for t in registry.tasks("gold") if t.__name__.startswith("Agg")]
    assert aggregates and all(order.index(name) > fact + 2 for name in aggregates)


def test_numpy_runs_one_blas_thread_per_process_under_the_pipeline():
    """Importing the pipeline before numpy leaves OpenBLAS one thread (the workers are the parallelism);
    a value set in the environment wins."""
    import os
    import subprocess
    import sys

    probe = (
        "import ctypes, pipeline, numpy, scipy.optimize\n"
        "names = ('scipy_openblas_get_num_threads64_', 'scipy_openblas_get_num_threads', 'openblas_get_num_threads')\n"
        "libs = sorted({line.split()[-1] for line in open('/proc/self/maps') if 'openblas' in line.lower()})\n"
        "pools = [getattr(ctypes.CDLL(lib), n)() for lib in libs for n in names if hasattr(ctypes.CDLL(lib), n)]\n"
        "print(len(libs), *sorted(set(pools)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    threads = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    libraries, *pools = threads.split()
    assert int(libraries) >= 1 and pools == ["1"]  # numpy's and scipy's OpenBLAS alike
    chosen = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "OPENBLAS_NUM_THREADS": "2"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert chosen.split()[1:] == ["2"]
