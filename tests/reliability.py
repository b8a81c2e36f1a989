"""What must hold in a warehouse after any crash, any concurrent runs and any database fault.

Shared by tests/test_crash.py, tests/test_concurrency.py and tests/test_db_faults.py. Each
check takes the `query` fixture (or `querier(url)`) and returns what it found broken, so
that a test can assert it is empty and show it when it is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from psycopg2 import sql

# Surrogate ids come from identity sequences, which a rolled-back transaction does not give
# back: after a crash the same rows get other ids than in a clean run. Comparisons replace
# each id by what it stands for.
LOAD = "(select source_name || '@' || extract_date from meta.ingested_files where load_id = t.{col})"
NATURAL = {
    "_load_id": LOAD,
    "load_id": LOAD,
    # 'line <load_id>:<line_number>'
    "duplicate_of": (
        "(select 'line ' || source_name || '@' || extract_date || ':' || split_part(t.{col}, ':', 2) "
        "from meta.ingested_files where load_id = split_part(substr(t.{col}, 6), ':', 1)::bigint)"
    ),
    "product_key": "(select product_id from gold.dim_product where product_key = t.{col})",
    "customer_key": ("(select customer_id || '@' || valid_from from gold.dim_customer where customer_key = t.{col})"),
}
# A dimension's own surrogate key: its natural key is in the row already.
OWN_KEYS = {("gold", "dim_product", "product_key"), ("gold", "dim_customer", "customer_key")}
# Which run wrote an audit row, when, and its serial id (as tests.conftest.RUN_COLUMNS).
RUN_COLUMNS = {
    "run_id",
    "quarantined_at",
    "recorded_at",
    "checked_at",
    "computed_at",
    "loaded_at",
    "quarantine_id",
    "duplicate_id",
    "ingested_at",
}
# The fact's change log for the incremental aggregates: batch ids and pruned rows, not data.
BOOKKEEPING = ("_batches", "_delta", "_watermarks", "_changes", "_consumers")


def warehouse_checksums(query, schemas: tuple[str, ...] = ("bronze", "silver", "gold")) -> dict[str, str]:
    """md5 of every row of every data table, surrogate ids replaced by what they stand for."""
    columns: dict[tuple[str, str], list[sql.Composable]] = {}
    for schema, table, column in query(
        """select columns.table_schema, columns.table_name, columns.column_name
               from information_schema.columns as columns
               inner join information_schema.tables as tables using (table_schema, table_name)
               where columns.table_schema = any(%s) and tables.table_type = 'BASE TABLE'
               order by 1, 2, columns.ordinal_position""",
        (list(schemas),),
    ):
        if column in RUN_COLUMNS or (schema, table, column) in OWN_KEYS or table.endswith(BOOKKEEPING):
            continue
        if column in NATURAL:
            expression = sql.SQL(NATURAL[column]).format(col=sql.Identifier(column))
        else:
            expression = sql.SQL("t.{}").format(sql.Identifier(column))
        columns.setdefault((schema, table), []).append(sql.SQL("{} as {}").format(expression, sql.Identifier(column)))
    sums = {}
    for (schema, table), expressions in columns.items():
        (digest,) = query(
            sql.SQL(
                "select md5(coalesce(string_agg(row_text, E'\\n' order by row_text), '')) "
                "from (select (normalized)::text as row_text from (select {} from {} as t) as normalized) as rows"
            ).format(sql.SQL(", ").join(expressions), sql.Identifier(schema, table))
        )[0]
        sums[f"{schema}.{table}"] = digest
    return sums


def duplicate_keys(query) -> dict[str, int]:
    """Business keys held more than once (and customers without exactly one current version)."""
    checks = {
        "silver.customers.customer_id": "select customer_id from silver.customers group by 1 having count(*) > 1",
        "silver.products.product_id": "select product_id from silver.products group by 1 having count(*) > 1",
        "silver.sales.order_id": "select order_id from silver.sales group by 1 having count(*) > 1",
        "gold.fact_sales.order_id": "select order_id from gold.fact_sales group by 1 having count(*) > 1",
        "gold.dim_product.product_id": "select product_id from gold.dim_product group by 1 having count(*) > 1",
        "gold.dim_customer current version": (
            "select customer_id from gold.dim_customer group by 1 having count(*) filter (where is_current) <> 1"
        ),
        "gold.dim_customer.(customer_id, valid_from)": (
            "select customer_id, valid_from from gold.dim_customer group by 1, 2 having count(*) > 1"
        ),
        "gold.business_kpis.run_date": "select run_date from gold.business_kpis group by 1 having count(*) > 1",
        "meta.ingested_files (source, date)": (
            "select source_name, extract_date from meta.ingested_files group by 1, 2 having count(*) > 1"
        ),
    }
    for source in ("crm_customers", "erp_products", "erp_sales"):
        checks[f"bronze.{source}_raw line of a date"] = (
            f"select files.extract_date, rows._line_number from bronze.{source}_raw_rows as rows "  # noqa: S608
            "inner join meta.ingested_files as files on files.load_id = rows._load_id "
            "group by 1, 2 having count(*) > 1"
        )
    found = {}
    for name, statement in checks.items():
        (count,) = query(f"select count(*) from ({statement}) as repeated")[0]  # noqa: S608
        if count:
            found[name] = count
    return found


SILVER_SOURCES = {
    "customers": ("crm_customers", "SilverCustomers"),
    "products": ("erp_products", "SilverProducts"),
    "sales": ("erp_sales", "SilverSales"),
}


def conservation_breaks(query) -> list[str]:
    """Lines not in exactly one place.

    Bronze: each load's records are its rows loaded plus its rejects, each rejected line
    is one bronze quarantine row. Silver (for every date its task finished): each bronze
    line is exactly one silver row, one silver quarantine row or one recorded duplicate.
    """
    from pipeline.tasks_silver import SilverCustomers, SilverProducts, SilverSales

    tasks = {"SilverCustomers": SilverCustomers, "SilverProducts": SilverProducts, "SilverSales": SilverSales}
    breaks = []
    for source in ("crm_customers", "erp_products", "erp_sales"):
        rows = sql.Identifier("bronze", f"{source}_raw_rows")
        for load_id, day, records, loaded, rejected, in_bronze, quarantined in query(
            sql.SQL(
                """select files.load_id, files.extract_date, files.records, files.rows_loaded, files.rows_rejected,
                          (select count(*) from {} where _load_id = files.load_id),
                          (select count(*) from silver.quarantine
                           where stage = 'bronze' and load_id = files.load_id)
                   from meta.ingested_files as files where files.source_name = %s"""
            ).format(rows),
            (source,),
        ):
            if not (records == loaded + rejected and in_bronze == loaded and quarantined == rejected):
                breaks.append(
                    f"{source} load {load_id} of {day}: {records} records, {loaded} loaded ({in_bronze} in "
                    f"bronze), {rejected} rejected ({quarantined} quarantined)"
                )
    for table, (source, family) in SILVER_SOURCES.items():
        days = [
            day
            for (day,) in query(
                "select distinct extract_date from meta.ingested_files where source_name = %s", (source,)
            )
        ]
        done = [
            day
            for day in days
            if query("select 1 from meta.table_updates where update_id = %s", (tasks[family](date=day).task_id,))
        ]
        for day in done:
            lost, twice, unknown = query(
                sql.SQL(
                    """with
                   loads as (select load_id from meta.ingested_files where source_name = %(source)s
                             and extract_date = %(day)s),
                   lines as (select _load_id as load_id, _line_number as line_number from {rows}
                             where _load_id in (select load_id from loads)),
                   placed as (
                       select _load_id as load_id, _line_number as line_number from {target}
                       where _load_id in (select load_id from loads)
                       union all
                       select load_id, line_number from silver.quarantine
                       where stage = 'silver' and source_table = %(table)s and load_id in (select load_id from loads)
                       union all
                       select load_id, line_number from silver.duplicates
                       where source_table = %(table)s and load_id in (select load_id from loads)
                   )
                   select
                       (select count(*) from lines where (load_id, line_number) not in (select * from placed)),
                       (select count(*) from (select 1 from placed group by load_id, line_number having count(*) > 1) as repeated),
                       (select count(*) from placed where (load_id, line_number) not in (select * from lines))"""
                ).format(rows=sql.Identifier("bronze", f"{source}_raw_rows"), target=sql.Identifier("silver", table)),
                {"source": source, "day": day, "table": f"silver.{table}"},
            )[0]
            if lost or twice or unknown:
                breaks.append(
                    f"silver.{table} for {day}: {lost} bronze lines in no place, {twice} in two or more, "
                    f"{unknown} placed lines that are not bronze lines"
                )
    return breaks


# What a finished task leaves for its date (%(date)s), where there is something to see.
TASK_DATA = {
    "CrmCustomersRaw": "select exists (select 1 from meta.ingested_files where source_name = 'crm_customers' "
    "and extract_date = %(date)s)",
    "ErpProductsRaw": "select exists (select 1 from meta.ingested_files where source_name = 'erp_products' "
    "and extract_date = %(date)s)",
    "ErpSalesRaw": "select exists (select 1 from meta.ingested_files where source_name = 'erp_sales' "
    "and extract_date = %(date)s)",
    "SilverQualityGate": "select exists (select 1 from meta.quality_scores where run_date = %(date)s)",
    "DimDate": "select exists (select 1 from gold.dim_date where date = %(date)s)",
    "DimProduct": "select not exists (select 1 from silver.products as product where _extract_date = %(date)s "
    "and not exists (select 1 from gold.dim_product as dim where dim.product_id = product.product_id))",
    "DimCustomer": "select not exists (select 1 from silver.customer_versions as version "
    "where _extract_date = %(date)s and updated_at is not null and not exists "
    "(select 1 from gold.dim_customer as dim where dim.customer_id = version.customer_id))",
    "FactSales": "select exists (select 1 from gold.fact_sales where _extract_date = %(date)s)",
    "AggDailySales": "select exists (select 1 from gold.fact_sales_watermarks where consumer = 'gold.agg_daily_sales')",
    "AggMonthlySales": "select exists (select 1 from gold.fact_sales_watermarks "
    "where consumer = 'gold.agg_monthly_sales')",
    "CustomerAnalytics": "select exists (select 1 from gold.fact_sales_watermarks "
    "where consumer = 'gold.customer_analytics')",
    "ProductAnalytics": "select exists (select 1 from gold.fact_sales_watermarks "
    "where consumer = 'gold.product_analytics')",
    "CohortRetention": "select exists (select 1 from gold.fact_sales_watermarks "
    "where consumer = 'gold.cohort_retention')",
    "CustomerClv": "select (select count(*) from gold.clv_model where as_of_date = %(date)s) = 2 "
    "and exists (select 1 from gold.customer_clv where as_of_date = %(date)s)",
    "BusinessKpis": "select exists (select 1 from gold.business_kpis where run_date = %(date)s)",
    "Anomalies": "select exists (select 1 from meta.anomalies where extract_date = %(date)s)",
}
for _table, (_source, _family) in SILVER_SOURCES.items():
    TASK_DATA[_family] = (
        f"select exists (select 1 from silver.{_table} where _extract_date = %(date)s) "  # noqa: S608
        f"or exists (select 1 from silver.duplicates where source_table = 'silver.{_table}' "
        "and extract_date = %(date)s)"
    )


def markers_without_data(query) -> list[str]:
    """Markers whose task has no success row with the same task id, or whose data is not there."""
    problems = []
    for update_id, target_table in query("select update_id, target_table from meta.table_updates order by 1"):
        statuses = [status for (status,) in query("select status from meta.task_runs where task_id = %s", (update_id,))]
        if "success" not in statuses:
            problems.append(f"{update_id} ({target_table}): marker without a success row (task runs: {statuses})")
        params = query("select params->>'date' from meta.task_runs where task_id = %s limit 1", (update_id,))
        family = update_id.split("_", 1)[0]
        if params and family in TASK_DATA:
            day = date.fromisoformat(params[0][0])
            if not query(TASK_DATA[family], {"date": day})[0][0]:
                problems.append(f"{update_id}: marker but no data in {target_table} for {day}")
    return problems


def task_ids_done_twice(query) -> dict[str, list[str]]:
    """Task ids with more than one run that did the work ('success')."""
    rows = query("""select task_id, array_agg(status order by started_at) from meta.task_runs
                    group by task_id having count(*) filter (where status = 'success') > 1""")
    return dict(rows)


def assert_consistent(query) -> None:
    """Every check above finds nothing."""
    found = {
        "duplicate keys": duplicate_keys(query),
        "conservation": conservation_breaks(query),
        "markers without data": markers_without_data(query),
        "done twice": task_ids_done_twice(query),
    }
    assert not any(found.values()), found


def create_database(server_url: str, template: str | None = None) -> tuple[str, str]:
    """A new database on the test server, empty and bootstrapped or copied from `template`; (name, url)."""
    from pipeline.core import db

    name = f"reliability_{uuid.uuid4().hex[:12]}"
    conn = db.connect(db.url_with_database(server_url, "postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if template:
                cur.execute(
                    sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template))
                )
            else:
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    url = db.url_with_database(server_url, name)
    if not template:
        db.bootstrap(url)
    return name, url


def querier(url: str):
    """Like the `query` fixture, for any database."""
    from pipeline.core import db

    def run(statement, params=None) -> list[tuple]:
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    return run


DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)  # the dates of the reliability_landing fixture


@dataclass
class CleanRuns:
    """What clean runs of both dates, one after the other, leave: what a faulty history must end in."""

    day1_template: str  # a database after a clean run of DAY1, to copy
    checksums: dict[str, str]  # warehouse_checksums after DAY1 and DAY2
    markers: set[str]
    seconds: dict[tuple[str, date], float]  # each task's duration
    landing: Path


def clean_runs(server_url: str, landing: Path) -> Iterator[CleanRuns]:
    """Run DAY1 and then DAY2 on fresh databases (the reliability_reference fixture); drop them afterwards."""
    import pytest

    from pipeline.core import db
    from pipeline.operations.runner import run_pipeline

    day1, day1_url = create_database(server_url)
    both = None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DATABASE_URL", day1_url)
            assert run_pipeline(DAY1, landing=landing, trigger="test").success
            both, both_url = create_database(server_url, template=day1)
            patch.setenv("DATABASE_URL", both_url)
            assert run_pipeline(DAY2, landing=landing, trigger="test").success
        query = querier(both_url)
        seconds = {
            (family, date.fromisoformat(day)): float(took)
            for family, day, took in query(
                """select task_family, params->>'date', extract(epoch from finished_at - started_at)
               from meta.task_runs where status = 'success'"""
            )
        }
        yield CleanRuns(
            day1_template=day1,
            checksums=warehouse_checksums(query),
            markers={marker for (marker,) in query("select update_id from meta.table_updates")},
            seconds=seconds,
            landing=landing,
        )
    finally:
        db.drop_database(day1, server_url)
        if both:
            db.drop_database(both, server_url)


def assert_same_as(
    query,
    reference: CleanRuns | None = None,
    *,
    checksums: dict[str, str] | None = None,
    markers: set[str] | None = None,
) -> None:
    """The markers and the data of the reference, and every check finding nothing."""
    checksums = checksums if reference is None else reference.checksums
    markers = markers if reference is None else reference.markers
    assert {marker for (marker,) in query("select update_id from meta.table_updates")} == markers
    found = warehouse_checksums(query)
    assert found.keys() == checksums.keys()
    assert {table for table in found if found[table] != checksums[table]} == set()
    assert_consistent(query)
