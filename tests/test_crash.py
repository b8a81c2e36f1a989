"""Crash anywhere: SIGKILL a real `metalayer run` inside a chosen task, rerun, and find the warehouse a clean run leaves.

Each point names a warehouse task, an extract date and where in the task to kill: `copy` (bronze, once
COPY has taken data; a row trigger slows the COPY so that it is seen half done, see `slow_rows`), `merge` (silver, inside the merge statement; the test holds a lock on the silver
table so that the statement is caught in the act) or a fraction of the task's duration in a clean run
(measured from when its backend is first seen in its transaction; see `strikes` for what is tried when
the task commits before that). The run is a subprocess in its own
process group, killed whole. Then the date is run again (and the next date, when the point was on the
first), and the test asserts: the killed run was left 'running' and the rerun marked it failed
(abandoned); bronze, silver and gold equal the clean run's (surrogate ids aside, see
tests/reliability.py); no business key twice; every line in exactly one place; no marker without its
success row and data; no task's work done twice. The same checks, but the equality, also hold right
after the kill.

`make test` runs REDUCED_POINTS (bronze mid-COPY, silver mid-merge on both dates, three in gold);
`METALAYER_CRASH_POINTS=all` adds one seeded random point per warehouse task (24 in all), and
`METALAYER_CRASH_SEED` changes the seed (default 9).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.reliability import (
    DAY1,
    DAY2,
    assert_consistent,
    assert_same_as,
    conservation_breaks,
    create_database,
    duplicate_keys,
    markers_without_data,
    querier,
    task_ids_done_twice,
    warehouse_checksums,
)

METALAYER = str(Path(sys.executable).with_name("metalayer"))
FAMILIES = (
    "CrmCustomersRaw",
    "ErpProductsRaw",
    "ErpSalesRaw",
    "SilverCustomers",
    "SilverProducts",
    "SilverSales",
    "SilverQualityGate",
    "DimDate",
    "DimProduct",
    "DimCustomer",
    "FactSales",
    "AggDailySales",
    "AggMonthlySales",
    "CustomerAnalytics",
    "ProductAnalytics",
    "CohortRetention",
    "CustomerClv",
    "BusinessKpis",
    "Anomalies",
)
MERGE_TABLES = {"SilverCustomers": "customers", "SilverProducts": "products", "SilverSales": "sales"}


@dataclass(frozen=True)
class KillPoint:
    family: str
    day: date
    at: str  # "copy", "merge" or a fraction of the task's clean duration, e.g. "0.40"

    def __str__(self) -> str:
        return f"{self.family}-{self.day:%m%d}-{self.at}"


REDUCED_POINTS = (
    KillPoint("ErpSalesRaw", DAY1, "copy"),
    KillPoint("SilverCustomers", DAY1, "merge"),
    KillPoint("SilverSales", DAY2, "merge"),
    KillPoint("FactSales", DAY1, "0.50"),
    KillPoint("DimCustomer", DAY2, "0.30"),
    KillPoint("CustomerClv", DAY2, "0.50"),
)


def all_points(seed: int) -> tuple[KillPoint, ...]:
    """The reduced points and one seeded point per warehouse task: a random date and moment."""
    rng = random.Random(seed)
    chosen = [KillPoint(family, rng.choice((DAY1, DAY2)), f"{rng.uniform(0, 0.8):.2f}") for family in FAMILIES]
    return REDUCED_POINTS + tuple(chosen)


def selected_points() -> tuple[KillPoint, ...]:
    if os.environ.get("METALAYER_CRASH_POINTS", "").lower() == "all":
        return all_points(int(os.environ.get("METALAYER_CRASH_SEED", "9")))
    return REDUCED_POINTS


def task_id(family: str, day: date) -> str:
    import pipeline

    return getattr(pipeline, family)(date=day).task_id


# -- databases ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def killed_run_config(tmp_path_factory) -> Path:
    """LUIGI_CONFIG_PATH of the runs that get killed: the tests' short waits, and COPY in 16 kB pieces
    so that a load can be caught half done."""
    config = tmp_path_factory.mktemp("crash-config") / "luigi.cfg"
    config.write_text((REPO_ROOT / "tests" / "luigi.test.cfg").read_text() + "\n[bronze]\ncopy_buffer_bytes = 16384\n")
    return config


# -- killing ------------------------------------------------------------------------------------------------

# The task's backend inside a transaction; a backend still 'starting' (authentication, settings) is in
# a transaction of its own start-up, not yet the task's.
WATCH = """
    select activity.pid, activity.state, activity.query, activity.wait_event_type, progress.bytes_processed
    from pg_stat_activity as activity
    left join pg_stat_progress_copy as progress using (pid)
    where activity.datname = current_database() and activity.application_name = %s
        and activity.xact_start is not null and activity.state <> 'starting'
"""


@dataclass(frozen=True)
class Strike:
    """How one attempt at a point kills: `how` the backend must be seen, then `delay` seconds; `hold`, a
    table the harness locks in share mode from before the run to after the kill (writes to it wait)."""

    how: str  # "copy", "merge", "moment" or "first write"
    delay: float = 0.0
    hold: str | None = None


def strikes(point: KillPoint, reference) -> list[Strike]:
    """The attempts at a point, in order, until one kills the task before its commit.

    A moment after the task's commit is tried again at the task's first sight, and when the task is
    too short even for that, at its first write to its table (held by a lock).
    """
    if point.at == "copy":
        return [Strike("copy")]
    if point.at == "merge":
        return [Strike("merge", hold=f"silver.{MERGE_TABLES[point.family]}")]
    planned = float(point.at) * reference.seconds[(point.family, point.day)]
    return [Strike("moment", planned), Strike("moment"), Strike("first write", hold=target_table(point))]


def target_table(point: KillPoint) -> str:
    """The table the task writes its data to (bronze tasks name their view; rows go to its _rows table)."""
    import pipeline

    table = getattr(pipeline, point.family)(date=point.day).table
    return f"{table}_rows" if table.startswith("bronze.") else table


def reached(point: KillPoint, strike: Strike, row: tuple) -> bool:
    """Whether the task's backend, in its transaction, is where the strike says."""
    _pid, state, statement, wait_event_type, copied = row
    if strike.how == "copy":
        return (copied or 0) > 0  # bytes COPY has taken in
    if strike.how == "merge":
        target = f'"silver"."{MERGE_TABLES[point.family]}"'
        return (
            state == "active"
            and wait_event_type == "Lock"
            and (f"update {target}" in statement or f"insert into {target}" in statement)
        )
    if strike.how == "first write":
        return state == "active" and wait_event_type == "Lock"
    return True


@dataclass
class Kill:
    run_id: str
    strike: Strike
    statement: str  # what the task's backend was running at the kill
    before_commit: bool  # the kill came before the task committed: its marker is not there
    log: str


def run_and_kill(url: str, point: KillPoint, strike: Strike, landing: Path, config: Path, log_path: Path) -> Kill:
    """Start `metalayer run` for the point's date and SIGKILL its process group where the strike says."""
    from pipeline.core import db

    run_id = f"crash-{uuid.uuid4().hex[:8]}"
    application = f"metalayer {point.family} {point.day}"
    monitor = db.connect(url, application_name="crash harness")
    monitor.autocommit = True
    lock = hold_share_lock(url, strike.hold) if strike.hold else None
    if strike.how == "copy":
        slow_rows(url, target_table(point))
    env = {**os.environ, "DATABASE_URL": url, "LUIGI_CONFIG_PATH": str(config)}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                METALAYER,
                "run",
                "--date",
                str(point.day),
                "--landing",
                str(landing),
                "--trigger",
                "test",
                "--run-id",
                run_id,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    seen_at, seen, statement = None, [], ""
    try:
        with monitor.cursor() as cur:
            while True:
                if process.poll() is not None:
                    raise AssertionError(
                        f"the run ended (exit {process.returncode}) before {point} was reached; "
                        f"seen: {seen[-20:]}\n" + log_path.read_text()[-3000:]
                    )
                cur.execute(WATCH, (application,))
                rows = cur.fetchall()
                seen.extend(rows)
                if seen_at is None and rows and reached(point, strike, rows[0]):
                    seen_at = time.monotonic()
                if seen_at is not None and time.monotonic() >= seen_at + strike.delay:
                    os.killpg(process.pid, signal.SIGKILL)
                    statement = rows[0][2].strip() if rows else ""
                    break
                time.sleep(0.002)
        process.wait(timeout=30)
        if lock is not None:
            lock.rollback()
        # The killed client's backend ends as soon as it notices (with its transaction, unless its
        # COMMIT had already arrived): wait for that, then see whether the task committed.
        with monitor.cursor() as cur:
            deadline = time.monotonic() + 30
            while True:
                cur.execute("select count(*) from pg_stat_activity where application_name = %s", (application,))
                if not cur.fetchone()[0]:
                    break
                assert time.monotonic() < deadline, f"the backend of {application} outlived its client"
                time.sleep(0.01)
            cur.execute("select 1 from meta.table_updates where update_id = %s", (task_id(point.family, point.day),))
            committed = cur.fetchone() is not None
    finally:
        monitor.close()
        if lock is not None:
            lock.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        if strike.how == "copy":
            slow_rows(url, target_table(point), slow=False)
    assert process.returncode == -signal.SIGKILL
    return Kill(
        run_id=run_id, strike=strike, statement=statement, before_commit=not committed, log=log_path.read_text()
    )


def hold_share_lock(url: str, table: str):
    """A connection holding a share lock on a table: reads pass, the first write waits."""
    from psycopg2 import sql

    from pipeline.core import db

    conn = db.connect(url, application_name="crash harness lock")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("lock table {} in share mode").format(sql.Identifier(*table.split("."))))
    return conn


SLOW_ROWS = "crash_harness_slow_rows"


def slow_rows(url: str, table: str, *, slow: bool = True) -> None:
    """Make every row written to `table` take a millisecond (a row trigger), or undo it.

    A COPY of the small fixture takes a few milliseconds on a fast machine, less than the harness needs
    to see it in pg_stat_progress_copy; slowed, it shows its first bytes for seconds. The rerun and
    the comparison see the table as it was: the trigger is gone before them.
    """
    from psycopg2 import sql

    from pipeline.core import db

    names = {"trigger": sql.Identifier(SLOW_ROWS), "table": sql.Identifier(*table.split("."))}
    with db.transaction(url) as conn, conn.cursor() as cur:
        if slow:
            cur.execute(
                sql.SQL(
                    "create function public.{trigger}() returns trigger language plpgsql as "
                    "$$ begin perform pg_sleep(0.001); return new; end $$; "
                    "create trigger {trigger} before insert on {table} "
                    "for each row execute function public.{trigger}()"
                ).format(**names)
            )
        else:
            cur.execute(
                sql.SQL(
                    "drop trigger if exists {trigger} on {table}; drop function if exists public.{trigger}()"
                ).format(**names)
            )


# -- the test -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", selected_points(), ids=str)
def test_crash_at_a_point_then_rerun_ends_as_a_clean_run(
    point, reliability_reference, killed_run_config, server_url, tmp_path, monkeypatch
):
    from pipeline.core import db
    from pipeline.operations.runner import run_pipeline

    reference = reliability_reference
    for strike in strikes(point, reference):
        name, url = create_database(server_url, template=reference.day1_template if point.day == DAY2 else None)
        kill = run_and_kill(
            url, point, strike, reference.landing, killed_run_config, tmp_path / f"run-{strike.how}-{strike.delay}.log"
        )
        if kill.before_commit:
            break
        db.drop_database(name, server_url)
    assert kill.before_commit, f"{point}: the task was never caught before its commit\n{kill.log[-3000:]}"
    print(
        f"{point}: killed at {strike.how}, {strike.delay * 1000:.0f} ms in, in "
        f"{(kill.statement.splitlines() or [''])[0][:80]!r}"
    )

    monkeypatch.setenv("DATABASE_URL", url)
    query = querier(url)
    try:
        if point.at == "copy":
            assert kill.statement.startswith('copy "bronze"."erp_sales_raw_rows"')
        if point.at == "merge":
            assert f'"silver"."{MERGE_TABLES[point.family]}"' in kill.statement
        # Straight after the crash: the run is still 'running', and what is committed is whole.
        assert query("select status from meta.pipeline_runs where run_id = %s", (kill.run_id,)) == [("running",)]
        assert_consistent(query)

        rerun = run_pipeline(point.day, landing=reference.landing, trigger="test")
        assert rerun.success, rerun.luigi_summary
        if point.day == DAY1:
            assert run_pipeline(DAY2, landing=reference.landing, trigger="test").success

        status, error = query("select status, error from meta.pipeline_runs where run_id = %s", (kill.run_id,))[0]
        assert status == "failed" and error.startswith("abandoned"), (status, error)
        assert query("select count(*) from meta.task_runs where status = 'running'") == [(0,)]
        assert_same_as(query, reference)
    finally:
        monkeypatch.delenv("DATABASE_URL")
        db.drop_database(name, server_url)


def test_the_checks_find_what_they_look_for(reliability_reference, server_url):
    """Each invariant check, on a copy of a clean warehouse with one thing broken on purpose."""
    from pipeline.core import db

    name, url = create_database(server_url, template=reliability_reference.day1_template)
    query = querier(url)
    try:
        assert_consistent(query)
        before = warehouse_checksums(query)
        # A sales line in silver and in the quarantine: in two places, and counted once too many.
        (order_id, load_id, line) = query("select order_id, _load_id, _line_number from silver.sales limit 1")[0]
        query(
            """insert into silver.quarantine (run_id, stage, source_table, line_number, load_id, extract_date,
                                                rule_name, reason, record)
                 values ('x', 'silver', 'silver.sales', %s, %s, %s, 'test', 'test', '{}')""",
            (line, load_id, DAY1),
        )
        assert conservation_breaks(query) == [
            f"silver.sales for {DAY1}: 0 bronze lines in no place, 1 in two or more, 0 placed lines that are not "
            "bronze lines"
        ]
        query("delete from silver.sales where order_id = %s", (order_id,))
        assert conservation_breaks(query) == []  # now the line is in one place again
        # A second current version of a customer; a marker whose data is gone; a task done twice.
        query("""insert into gold.dim_customer (customer_id, attribute_hash, is_current, valid_from)
                 select customer_id, 'x', true, valid_from - interval '1 day' from gold.dim_customer
                 where is_current limit 1""")
        assert duplicate_keys(query) == {"gold.dim_customer current version": 1}
        query("delete from gold.business_kpis")
        assert markers_without_data(query) == [
            f"{task_id('BusinessKpis', DAY1)}: marker but no data in gold.business_kpis for {DAY1}"
        ]
        query("""insert into meta.task_runs (run_id, task_family, task_id, params, status)
                 select 'x', task_family, task_id, params, 'success' from meta.task_runs
                 where task_family = 'DimDate'""")
        assert list(task_ids_done_twice(query)) == [task_id("DimDate", DAY1)]
        # Surrogate ids do not count, what they stand for does.
        for table in ("gold.dim_product", "gold.fact_sales", "gold.product_analytics"):
            query(f"alter table {table} alter column product_key drop identity if exists")
            query(f"update {table} set product_key = product_key + 1000")
        assert warehouse_checksums(query)["gold.fact_sales"] == before["gold.fact_sales"]
        query("""update gold.fact_sales set product_key = (select max(product_key) from gold.dim_product)
                 where order_id = (select min(order_id) from gold.fact_sales
                                   where product_key <> (select max(product_key) from gold.dim_product))""")
        after = warehouse_checksums(query)
        assert {table for table in after if after[table] != before[table]} == {
            "silver.quarantine",
            "silver.sales",
            "gold.dim_customer",
            "gold.business_kpis",
            "gold.fact_sales",
        }
    finally:
        db.drop_database(name, server_url)
