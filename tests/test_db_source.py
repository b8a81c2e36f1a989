"""A PostgreSQL source (sources.toml kind = "postgres"): a second database on the embedded server plays the CRM.

Customers come from the CRM incrementally by updated_at, with a look-back and a
key snapshot each extract; products and sales stay landing files. Silver must
equal the CRM table after each extract, deletes included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.core import db
from pipeline.operations.runner import run_pipeline
from tests.conftest import REPO_ROOT, write_landing

# Extract dates end today: a deletion is stamped with the source's clock, and a version after it must not
# be later than its extract date (silver's updated_at_not_in_future).
TODAY = datetime.now(UTC).date()
DAYS = (TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY)
BEFORE = DAYS[0] - timedelta(days=1)  # the CRM's rows before the first extract
DSN_ENV = "METALAYER_TEST_CRM_DSN"
SOURCES_TOML = f"""
[sources.crm_customers]
kind = "postgres"
[sources.crm_customers.extract]
dsn_env = "{DSN_ENV}"
table = "crm.customers"
watermark_column = "updated_at"
lookback = "10 minutes"
key_snapshot_every = 1
"""
CRM_DDL = f"""
create schema crm;
create table crm.customers (
    customer_id text primary key,
    first_name text not null,
    last_name text not null,
    email text not null,
    phone text,
    address text,
    city text,
    state text,
    region text,
    signup_date date,
    updated_at timestamptz not null
);
insert into crm.customers values
    ('C1', 'Ann', 'Lee', 'ann@example.com', '+14155550101', '1 Main St', 'Boston', 'MA', 'New England',
     '2024-01-05', '{BEFORE} 09:00:00+00'),
    ('C2', 'Bob', 'Smith', 'bob@example.com', '+14155550102', '2 Oak Ave', 'Boston', 'MA', 'New England',
     '2024-01-06', '{BEFORE} 10:00:00+00'),
    ('C3', 'Cy', 'Young', 'cy@example.com', '+14155550103', '3 Elm St', 'Denver', 'CO', 'Mountain',
     '2024-01-07', '{BEFORE} 11:00:00+00'),
    ('C4', 'Di', 'Prince', 'di@example.com', '+14155550104', '4 Pine St', 'Denver', 'CO', 'Mountain',
     '2024-01-08', '{BEFORE} 12:00:00.123456+00');
"""
# Between the first and the second extract: an update, an insert, a delete, and a row that commits late
# with an updated_at 5 minutes below the high-water mark (BEFORE 12:00:00.123456), inside the look-back.
CRM_CHANGES = f"""
update crm.customers set city = 'Cambridge', updated_at = '{DAYS[0]} 08:00:00+00' where customer_id = 'C2';
insert into crm.customers values
    ('C5', 'Eve', 'Stone', 'eve@example.com', '+14155550105', '5 Ash Rd', 'Austin', 'TX', 'West South Central',
     '2024-02-01', '{DAYS[0]} 09:00:00+00');
delete from crm.customers where customer_id = 'C3';
insert into crm.customers values
    ('C6', 'Flo', 'Late', 'flo@example.com', '+14155550106', '6 Elm St', 'Denver', 'CO', 'Mountain',
     '2024-02-02', '{BEFORE} 11:55:00+00');
"""
PRODUCTS = (
    "product_id,product_name,category,unit_cost,list_price,updated_at\nP1,Widget,Tools,1.00,2.50,2024-01-01T00:00:00Z\n"
)
SALES = {
    DAYS[0]: f"O1,C1,P1,{BEFORE},1,2.50\nO2,C3,P1,{BEFORE},2,2.50\n",
    DAYS[1]: f"O3,C2,P1,{DAYS[0]},1,2.50\nO4,C5,P1,{DAYS[0]},1,2.50\n",
    DAYS[2]: f"O5,C4,P1,{DAYS[1]},3,2.50\n",
}
COMPARED = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "address",
    "city",
    "state",
    "region",
    "signup_date",
    "updated_at",
)


@pytest.fixture
def crm(server_url: str, warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, luigi_setting):
    """The CRM database, its DSN in DSN_ENV, and a sources file making crm_customers a postgres source."""
    name = f"crm_{uuid.uuid4().hex[:12]}"
    url = db.create_database(name, server_url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(CRM_DDL)
    sources = tmp_path / "sources.toml"
    sources.write_text(SOURCES_TOML)
    monkeypatch.setenv(DSN_ENV, url)
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(sources))
    luigi_setting("quality", "on_breach", "warn")
    yield url
    db.drop_database(name, server_url)


def crm_query(url: str, text: str, params=None) -> list[tuple]:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(text, params)
        return cur.fetchall() if cur.description else []


def landing_for(tmp_path: Path, days) -> Path:
    landing = tmp_path / "landing"
    for day in days:
        write_landing(
            landing,
            day.isoformat(),
            {
                "erp_products.csv": PRODUCTS,
                "erp_sales.csv": "order_id,customer_id,product_id,order_date,quantity,unit_price\n" + SALES[day],
            },
        )
    return landing


def assert_silver_matches_crm(query, crm_url: str) -> None:
    columns = ", ".join(COMPARED)
    source = crm_query(crm_url, f"select {columns}, phone from crm.customers order by customer_id")  # noqa: S608
    live = query(f"select {columns}, phone_raw from silver.customers where not is_deleted order by customer_id")  # noqa: S608
    assert live == source
    # Second way: counts and keys on each side, deleted ones being exactly the keys the CRM lost.
    crm_keys = {key for (key,) in crm_query(crm_url, "select customer_id from crm.customers")}
    deleted = {key for (key,) in query("select customer_id from silver.customers where is_deleted")}
    every = {key for (key,) in query("select customer_id from silver.customers")}
    assert every - deleted == crm_keys
    assert deleted == every - crm_keys


def test_two_incremental_extracts_with_late_row_and_delete_match_the_crm(crm, warehouse, query, tmp_path):
    landing = landing_for(tmp_path, DAYS)
    first = run_pipeline(DAYS[0], landing=landing, trigger="test")
    assert first.success, first.luigi_summary
    assert_silver_matches_crm(query, crm)
    assert query(
        "select low_watermark, high_watermark, rows_extracted, has_key_snapshot, keys_in_snapshot "
        "from meta.source_watermarks"
    ) == [(None, f"{BEFORE} 12:00:00.123456+00", 4, True, 4)]
    (high,) = crm_query(crm, "select max(updated_at)::text from crm.customers")[0]
    assert high == f"{BEFORE} 12:00:00.123456+00"

    crm_query(crm, CRM_CHANGES)
    second = run_pipeline(DAYS[1], landing=landing, trigger="test")
    assert second.success, second.luigi_summary
    assert_silver_matches_crm(query, crm)
    # The second extract: rows after the mark less 10 minutes (C2, C5, the late C6, and C4 again in the overlap).
    ((load_id, low, high, rows, keys),) = query(
        "select load_id, low_watermark, high_watermark, rows_extracted, keys_in_snapshot from meta.source_watermarks "
        "where extract_date = %s",
        (DAYS[1],),
    )
    assert (low, high, rows, keys) == (f"{BEFORE} 11:50:00.123456+00", f"{DAYS[0]} 09:00:00+00", 4, 5)
    assert sorted(
        k for (k,) in query("select customer_id from bronze.crm_customers_raw_rows where _load_id = %s", (load_id,))
    ) == ["C2", "C4", "C5", "C6"]
    assert query("select rows_loaded, rows_rejected from meta.ingested_files where load_id = %s", (load_id,)) == [
        (4, 0)
    ]
    # The overlap (C4 sent again unchanged) is one row: the later line stands and the first extract's line is
    # recorded as superseded by it, as is C2's older version (as for landing files re-sending a version).
    lines = dict(
        query("select customer_id, _line_number from bronze.crm_customers_raw_rows where _load_id = %s", (load_id,))
    )
    assert query(
        "select business_key, kind, extract_date, duplicate_of from silver.duplicates "
        "where source_table = 'silver.customers' order by 1"
    ) == [
        ("C2", "superseded", DAYS[0], f"line {load_id}:{lines['C2']}"),
        ("C4", "superseded", DAYS[0], f"line {load_id}:{lines['C4']}"),
    ]
    assert query("select count(*), count(distinct customer_id) from silver.customers") == [(6, 6)]
    # C3 is deleted at the source's clock of the second snapshot.
    ((extracted_at,),) = query("select extracted_at from meta.source_watermarks where load_id = %s", (load_id,))
    assert query("select customer_id, deleted_at from silver.customers where is_deleted") == [("C3", extracted_at)]
    assert query("select business_key, deleted_load_id, restored_at from silver.deletions") == [("C3", load_id, None)]
    # SCD2: C3's only version is closed at the deletion; C2 has two versions, the second current.
    assert query("select valid_from, valid_to, is_current from gold.dim_customer where customer_id = 'C3'") == [
        (crm_timestamp(crm, f"{BEFORE} 11:00:00+00"), extracted_at, False)
    ]
    assert query(
        "select city, is_current, valid_to is null from gold.dim_customer where customer_id = 'C2' order by valid_from"
    ) == [("Boston", False, False), ("Cambridge", True, True)]
    assert query("select count(*) from gold.dim_customer where is_current") == [(5,)]
    assert crm_query(crm, "select count(*) from crm.customers") == [(5,)]
    # The deleted customer's sale stays a fact (revenue happened); every sale is a fact.
    assert query("select order_id, customer_id from gold.fact_sales order by 1") == [
        ("O1", "C1"),
        ("O2", "C3"),
        ("O3", "C2"),
        ("O4", "C5"),
    ]

    # C3 comes back (re-inserted after its deletion was seen): a new dimension row, current again.
    crm_query(
        crm,
        "insert into crm.customers values ('C3', 'Cy', 'Young', 'cy@example.com', '+14155550103', "
        "'3 Elm St', 'Denver', 'CO', 'Mountain', '2024-01-07', clock_timestamp())",
    )
    ((back_at,),) = crm_query(crm, "select updated_at from crm.customers where customer_id = 'C3'")
    assert back_at > extracted_at
    third = run_pipeline(DAYS[2], landing=landing, trigger="test")
    assert third.success, third.luigi_summary
    assert_silver_matches_crm(query, crm)
    assert query(
        "select valid_from, valid_to, is_current from gold.dim_customer where customer_id = 'C3' order by valid_from"
    ) == [(crm_timestamp(crm, f"{BEFORE} 11:00:00+00"), extracted_at, False), (back_at, None, True)]
    assert query("select restored_at from silver.deletions where business_key = 'C3'") == [(back_at,)]
    assert query("select count(*) from gold.dim_customer where is_current") == [(6,)]


def crm_timestamp(crm_url: str, text: str):
    return crm_query(crm_url, "select %s::timestamptz", (text,))[0][0]


def test_missing_dsn_variable_fails_with_what_to_do(crm, warehouse, query, tmp_path, monkeypatch):
    monkeypatch.delenv(DSN_ENV)
    result = run_pipeline(DAYS[0], landing=landing_for(tmp_path, DAYS[:1]), trigger="test")
    assert not result.success
    ((error,),) = query("select error from meta.task_runs where task_family = 'CrmCustomersRaw' and status = 'failed'")
    assert error.startswith(f"SourceExtractError: crm_customers: the environment variable {DSN_ENV}")
    assert "What to do: export" in error and "Traceback" not in error
    assert query("select count(*) from meta.source_watermarks") == [(0,)]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('table = "crm.clients"', "the source has no table crm.clients"),
        ('table = "crm.customers"\nwatermark_column = "changed_at"', "has no column(s) changed_at"),
        ("unreachable", "cannot connect to the source database"),
    ],
)
def test_expected_failures_of_the_source(crm, warehouse, query, tmp_path, monkeypatch, setting, expected):
    text = SOURCES_TOML
    if setting == "unreachable":
        from tests.conftest import free_port

        monkeypatch.setenv(DSN_ENV, f"postgresql://nobody@127.0.0.1:{free_port()}/crm")
    else:
        text = text.replace('table = "crm.customers"\n', "").replace('watermark_column = "updated_at"\n', "")
        text += setting + ("" if "watermark_column" in setting else '\nwatermark_column = "updated_at"') + "\n"
    Path(os.environ["METALAYER_SOURCES_FILE"]).write_text(text)
    result = run_pipeline(DAYS[0], landing=landing_for(tmp_path, DAYS[:1]), trigger="test")
    assert not result.success
    errors = [
        error
        for (error,) in query(
            "select error from meta.task_runs where task_family = 'CrmCustomersRaw' "
            "and status = 'failed' order by task_run_id"
        )
    ]
    for error in errors:
        assert error.startswith("SourceExtractError: crm_customers: ") and expected in error, error
        assert "What to do:" in error and "Traceback" not in error
    # A missing table or column fails once; a refused connection is retried like a lost warehouse connection
    # (luigi.cfg [operations] transient_retries), then fails with the same message. Never by Luigi again.
    from pipeline.core.config import operations

    attempts = 1 + operations().transient_retries if setting == "unreachable" else 1
    assert len(errors) == attempts
    assert query("select count(*) from meta.source_watermarks") == [(0,)]


def test_sigkill_between_extract_and_commit_extracts_again(crm, warehouse, query, tmp_path):
    """The bronze load waits on a lock the test holds, after its extract is written; the run is killed there."""
    landing = landing_for(tmp_path, DAYS[:2])
    first = run_pipeline(DAYS[0], landing=landing, trigger="test")
    assert first.success, first.luigi_summary
    crm_query(crm, CRM_CHANGES)
    work_file = db.metalayer_home() / "extracts" / "crm_customers" / DAYS[1].isoformat() / "crm_customers.csv"
    work_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    blocker = db.connect(warehouse)
    try:
        with blocker.cursor() as cur:
            cur.execute("lock table bronze.crm_customers_raw_rows in access exclusive mode")
        log = (tmp_path / "killed-run.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run", "--date", DAYS[1].isoformat(), "--landing", str(landing)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            waiting = wait_for(
                lambda: (
                    query(
                        "select count(*) from pg_stat_activity where application_name like 'metalayer CrmCustomersRaw%%' "
                        "and wait_event_type = 'Lock'"
                    )[0][0]
                    == 1
                ),
                seconds=120,
            )
            assert waiting, (tmp_path / "killed-run.log").read_text()[-3000:]
            assert work_file.is_file()
            extracted = work_file.read_text().splitlines()
            assert len(extracted) == 1 + 4  # header and C2, C4, C5, C6
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        blocker.rollback()
        blocker.close()
    assert wait_for(
        lambda: (
            query("select count(*) from pg_stat_activity where application_name like 'metalayer CrmCustomersRaw%%'")[0][
                0
            ]
            == 0
        ),
        seconds=30,
    )
    # Nothing of the killed attempt: no load, no watermark.
    assert query("select count(*) from meta.ingested_files where source_name = 'crm_customers'") == [(1,)]
    assert query("select count(*) from meta.source_watermarks") == [(1,)]

    again = run_pipeline(DAYS[1], landing=landing, trigger="test")
    assert again.success, again.luigi_summary
    assert_silver_matches_crm(query, crm)
    # The same rows were extracted again from the same mark, once: no loss, no duplicate load.
    assert query(
        "select low_watermark, rows_extracted from meta.source_watermarks where extract_date = %s", (DAYS[1],)
    ) == [(f"{BEFORE} 11:50:00.123456+00", 4)]
    assert query(
        "select count(*) from meta.ingested_files where source_name = 'crm_customers' and extract_date = %s", (DAYS[1],)
    ) == [(1,)]
    assert query("select count(*) from bronze.crm_customers_raw_rows") == [(4 + 4,)]
    assert work_file.read_text().splitlines() == extracted


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_console_and_exporter_show_each_sources_watermark_and_lag(crm, warehouse, query, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from console import data
    from pipeline.operations.metrics import warehouse_metrics

    landing = landing_for(tmp_path, DAYS[:1])
    result = run_pipeline(DAYS[0], landing=landing, trigger="test")
    assert result.success, result.luigi_summary
    ((extracted_at, lag_seconds),) = query("select extracted_at, lag_seconds from meta.source_watermarks")
    # The lag a second way: the stored snapshot time less the CRM's newest updated_at.
    ((newest,),) = crm_query(crm, "select max(updated_at) from crm.customers")
    assert float(lag_seconds) == pytest.approx((extracted_at - newest).total_seconds(), abs=1e-3)

    monkeypatch.setenv("METALAYER_LANDING_DIR", str(landing))
    data.clear_cache()
    at = AppTest.from_file(str(REPO_ROOT / "console" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/overview.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = next(frame.value for frame in at.dataframe if "high_watermark" in frame.value.columns)
    data.clear_cache()
    assert shown["source_name"].tolist() == ["crm_customers"]  # file sources have no watermark
    row = shown.iloc[0]
    assert row["high_watermark"] == crm_query(crm, "select max(updated_at)::text from crm.customers")[0][0]
    assert row["rows_extracted"] == crm_query(crm, "select count(*) from crm.customers")[0][0] == 4
    assert row["keys_in_snapshot"] == 4
    assert row["lag_minutes"] == pytest.approx((extracted_at - newest).total_seconds() / 60, abs=1e-4)

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        families = {family.name: family for family in warehouse_metrics(cur)}
    samples = {
        family: {sample.labels["source"]: sample.value for sample in families[family].samples}
        for family in (
            "metalayer_source_high_watermark",
            "metalayer_source_watermark_lag_seconds",
            "metalayer_source_last_extract_timestamp_seconds",
        )
    }
    assert samples["metalayer_source_high_watermark"] == {"crm_customers": pytest.approx(newest.timestamp())}
    assert samples["metalayer_source_watermark_lag_seconds"] == {
        "crm_customers": pytest.approx((extracted_at - newest).total_seconds(), abs=1e-3)
    }
    assert samples["metalayer_source_last_extract_timestamp_seconds"] == {
        "crm_customers": pytest.approx(extracted_at.timestamp())
    }


def test_numeric_watermark_and_a_deleted_product(crm, warehouse, query, tmp_path):
    """erp_products from a table watermarked by an increasing change id; a deleted product stays in gold, flagged."""
    crm_query(
        crm,
        f"""
        insert into crm.customers values ('C5', 'Eve', 'Stone', 'eve@example.com', '+14155550105', '5 Ash Rd',
            'Austin', 'TX', 'West South Central', '2024-02-01', '{BEFORE} 08:00:00+00');
        create table crm.products (
            product_id text primary key, product_name text, category text, unit_cost numeric(12, 2),
            list_price numeric(12, 2), updated_at timestamptz not null, change_id bigserial not null unique);
        insert into crm.products (product_id, product_name, category, unit_cost, list_price, updated_at) values
            ('P1', 'Widget', 'Tools', 1.00, 2.50, now() - interval '3 days'),
            ('P2', 'Gadget', 'Tools', 5.00, 7.00, now() - interval '3 days')""",
    )
    Path(os.environ["METALAYER_SOURCES_FILE"]).write_text(
        SOURCES_TOML
        + f"""
[sources.erp_products]
kind = "postgres"
extra_columns = "ignore"
[sources.erp_products.extract]
dsn_env = "{DSN_ENV}"
query = "select * from crm.products"
watermark_column = "change_id"
lookback = 1
key_snapshot_every = 2
"""
    )
    landing = landing_for(tmp_path, DAYS)
    for day in DAYS[:2]:
        if day == DAYS[1]:
            crm_query(
                crm,
                "update crm.products set list_price = 8.00, updated_at = now() - interval '2 days', "
                "change_id = nextval('crm.products_change_id_seq') where product_id = 'P2'; "
                "insert into crm.products (product_id, product_name, category, unit_cost, list_price, "
                "updated_at) values ('P3', 'Gizmo', 'Toys', 3.00, 10.00, now() - interval '2 days')",
            )
        result = run_pipeline(day, landing=landing, trigger="test")
        assert result.success, result.luigi_summary
    # Second extract: change_id > 2 - 1, so P2 (1 -> 3... re-read window) and P3; no key snapshot (every 2nd).
    assert query(
        "select low_watermark, high_watermark, rows_extracted, has_key_snapshot from meta.source_watermarks "
        "where source_name = 'erp_products' order by load_id"
    ) == [(None, "2", 2, True), ("1", "4", 2, False)]
    assert crm_query(crm, "select max(change_id)::text, count(*) filter (where change_id > 1) from crm.products") == [
        ("4", 2)
    ]
    crm_query(crm, "delete from crm.products where product_id = 'P1'")
    third = run_pipeline(DAYS[2], landing=landing, trigger="test")
    assert third.success, third.luigi_summary
    ((load_id, has_snapshot, keys),) = query(
        "select load_id, has_key_snapshot, keys_in_snapshot from meta.source_watermarks "
        "where source_name = 'erp_products' and extract_date = %s",
        (DAYS[2],),
    )
    assert has_snapshot and keys == 2
    source = crm_query(
        crm, "select product_id, product_name, unit_cost, list_price, updated_at from crm.products order by 1"
    )
    assert (
        query(
            "select product_id, product_name, unit_cost, list_price, updated_at from silver.products "
            "where not is_deleted order by 1"
        )
        == source
    )
    ((extracted_at,),) = query("select extracted_at from meta.source_watermarks where load_id = %s", (load_id,))
    assert query("select product_id, deleted_at from silver.products where is_deleted") == [("P1", extracted_at)]
    assert query("select product_id, is_deleted, deleted_at from gold.dim_product order by 1") == [
        ("P1", True, extracted_at),
        ("P2", False, None),
        ("P3", False, None),
    ]
    # Facts of the deleted product stay (every sale line is a fact; nothing was quarantined).
    assert query("select count(*) from silver.quarantine") == [(0,)]
    assert query("select count(*) from gold.fact_sales") == query("select count(*) from silver.sales") == [(5,)]
