"""The database resolver and schema bootstrap, on a real embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from pipeline.core import db

EXPECTED_TABLES = {
    ("bronze", "crm_customers_raw"),
    ("bronze", "erp_products_raw"),
    ("bronze", "erp_sales_raw"),
    ("silver", "quarantine"),
    ("meta", "table_updates"),
    ("meta", "pipeline_runs"),
    ("meta", "task_runs"),
    ("meta", "ingested_files"),
    ("meta", "column_profiles"),
    ("meta", "quality_results"),
    ("meta", "sla_misses"),
    ("meta", "lineage"),
}


def metalayer(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=120,
        check=False,
    )


def test_database_url_setting_wins(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example:5433/warehouse")
    assert db.database_url() == "postgresql://someone@db.example:5433/warehouse"
    assert db.psycopg2_dsn(db.database_url()) == "host=db.example port=5433 user=someone dbname=warehouse"


def test_bootstrap_is_idempotent_and_creates_the_contract_tables(warehouse, query):
    db.bootstrap(warehouse)
    db.bootstrap(warehouse)
    tables = set(
        query(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('bronze', 'silver', 'gold', 'meta')"
        )
    )
    assert EXPECTED_TABLES <= tables
    assert query(
        "select count(*) from information_schema.schemata where schema_name in ('bronze', 'silver', 'gold', 'meta')"
    ) == [(4,)]


def test_embedded_server_is_shared_by_later_processes(server_url):
    if os.environ.get("METALAYER_TEST_POSTGRES") or (
        os.environ.get("DATABASE_URL") and "METALAYER_HOME" not in os.environ
    ):
        pytest.skip("the session's server is not an embedded one: nothing embedded to share")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    first = metalayer("db", "url", env=env)
    second = metalayer("db", "url", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == second.stdout.strip() == db.url_with_database(server_url, "metalayer")
    # Both processes reached the one server this session started: same postmaster.
    conn = db.connect(first.stdout.strip())
    with conn, conn.cursor() as cur:
        cur.execute("select pg_postmaster_start_time()")
        started = cur.fetchone()[0]
    conn.close()
    conn = db.connect(server_url)
    with conn, conn.cursor() as cur:
        cur.execute("select pg_postmaster_start_time()")
        assert cur.fetchone()[0] == started
    conn.close()


def test_db_stop_stops_the_embedded_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["METALAYER_HOME"] = str(tmp_path / "home")
    started = metalayer("db", "url", env=env)
    assert started.returncode == 0, started.stderr
    assert (tmp_path / "home" / "pgdata" / "postmaster.pid").exists()
    stopped = metalayer("db", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert not (tmp_path / "home" / "pgdata" / "postmaster.pid").exists()
    again = metalayer("db", "stop", env=env)
    assert "was not running" in again.stdout


def test_bootstrap_seeds_customer_history_from_an_older_silver(warehouse, query):
    query("""insert into silver.customers (customer_id, email, is_phone_valid, first_extract_date, updated_at,
                                           _extract_date, _load_id, _line_number)
             values ('C1', 'a@example.com', false, '2026-11-01', '2026-01-01', '2026-11-01', 7, 2)""")
    db.bootstrap(warehouse)
    assert query("select customer_id, _load_id, _line_number from silver.customer_versions") == [("C1", 7, 2)]
    db.bootstrap(warehouse)  # not again once the history has rows
    assert query("select count(*) from silver.customer_versions") == [(1,)]


def test_bootstrap_replaces_the_first_releases_unwritten_lineage_table(warehouse, query):
    query("drop table meta.lineage")
    query("""create table meta.lineage (upstream text not null, downstream text not null, task_family text not null,
                                        primary key (upstream, downstream))""")
    db.bootstrap(warehouse)
    columns = [
        name
        for (name,) in query(
            "select column_name from information_schema.columns where table_schema "
            "= 'meta' and table_name = 'lineage' order by ordinal_position"
        )
    ]
    assert columns == ["task_run_id", "run_id", "run_date", "task_family", "upstream", "downstream"]
    db.bootstrap(warehouse)  # and keeps the new one
    assert query("select count(*) from meta.lineage") == [(0,)]


def test_servers_older_than_15_are_refused_with_the_version_found_and_the_supported_ones():
    for version_num, shown in ((140011, "14.11"), (90624, "9.6.24")):
        with pytest.raises(db.UnsupportedServer) as refused:
            db.check_server_version(version_num, " at db.example:5432")
        assert str(refused.value) == (
            f"PostgreSQL {shown} at db.example:5432 is not supported: MetaLayer supports PostgreSQL 15, 16, 17 and 18"
        )
    for version_num in (150000, 160004, 170002, 180004):
        db.check_server_version(version_num)


def test_bootstrap_checks_the_server_version_first(warehouse, monkeypatch):
    monkeypatch.setattr(db, "SUPPORTED_MAJOR_VERSIONS", (99,))
    with pytest.raises(db.UnsupportedServer, match=r"PostgreSQL 1\d\.\d+ at .* is not supported"):
        db.bootstrap(warehouse)


def test_every_sql_file_is_read_through_one_loader_that_refuses_paths_outside_sql(tmp_path):
    import re

    assert db.sql_text("ops/purge.sql") == (db.SQL_DIR / "ops" / "purge.sql").read_text()
    assert db.sql_statement("gold/fact_sales.sql").as_string(None).rstrip().endswith(";") is False
    for wrong in ("../pyproject.toml", "ops/no_such.sql", "../../etc/passwd.sql", "quality_rules.toml"):
        with pytest.raises(FileNotFoundError, match="no SQL file"):
            db.sql_text(wrong)
    # No module reads a .sql file itself (bootstrap reads sql/schema/ beside its checksum).
    for module in sorted([*(db.REPO_ROOT / "pipeline").rglob("*.py"), *(db.REPO_ROOT / "console").rglob("*.py")]):
        text = module.read_text()
        if module.name == "db.py":
            continue
        assert not re.search(r"SQL_DIR\s*/(?![^\n]*\.toml)|\.sql\"\)\.read_text|sql_path\(", text), module


def test_the_warehouse_is_resolved_where_a_process_starts_and_handed_down(warehouse, monkeypatch):
    """db.Warehouse is the one way to the database: the connection helpers need its URL (no look-up of their
    own), only entry points resolve it from the environment, and a task writes where its warehouse says."""
    import ast
    import inspect

    from pipeline.core import db
    from pipeline.core.db import REPO_ROOT
    from pipeline.tasks_gold import DimDate

    for helper in (db.connect, db.transaction, db.ensure_bootstrapped, db.bootstrap, db.reader_url):
        assert inspect.signature(helper).parameters["url"].default is inspect.Parameter.empty, helper
    entry_points = {
        "pipeline/cli.py", "pipeline/bench.py", "pipeline/quickstart.py", "pipeline/master.py", "pipeline/base.py",
        "pipeline/core/runs.py", "pipeline/operations/runner.py", "pipeline/operations/maintenance.py",
        "pipeline/operations/watch.py", "pipeline/operations/scheduler.py", "pipeline/operations/exporter.py",
        "console/data.py", "console/bench.py",
    }  # fmt: skip
    resolving = set()
    for path in [*(REPO_ROOT / "pipeline").rglob("*.py"), *(REPO_ROOT / "console").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("from_environment", "database_url"):
                resolving.add(str(path.relative_to(REPO_ROOT)))
    assert resolving - {"pipeline/core/db.py"} <= entry_points, resolving - entry_points

    from sqlalchemy.engine import make_url

    secret = "s3cret"  # noqa: S105 - a test value
    house = db.Warehouse(make_url(warehouse).set(password=secret).render_as_string(hide_password=False))
    assert "s3cret" not in repr(house) and "s3cret" in house.url
    task = DimDate(date=date(2026, 1, 2))
    assert task.warehouse == db.Warehouse(warehouse) and task.output().url == warehouse
    with task.warehouse.ready().transaction() as conn, conn.cursor() as cur:
        cur.execute("select current_database()")
        assert make_url(warehouse).database == cur.fetchone()[0]


def test_statistics_of_a_small_load_refresh_only_its_columns(query, warehouse):
    """db.refresh_statistics: a table never analyzed, or changed by more than the share, gets every
    column's statistics; a small load only the named columns', which then know its values."""
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("drop table if exists public.stats_probe")
        cur.execute("create table public.stats_probe (load_id bigint, note text)")
        cur.execute("insert into public.stats_probe select 1, 'old ' || (i % 5) from generate_series(1, 1000) i")
        assert db.refresh_statistics(cur, "public.stats_probe", 1000, ("load_id",), 0.1) is True
    stats = "select attname, most_common_vals::text from pg_stats where tablename = 'stats_probe' order by attname"
    assert [name for name, _ in query(stats)] == ["load_id", "note"]
    note_before = dict(query(stats))["note"]

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("insert into public.stats_probe select 2, 'new' from generate_series(1, 50)")
        assert db.refresh_statistics(cur, "public.stats_probe", 50, ("load_id",), 0.1) is False
    after = dict(query(stats))
    assert "2" in after["load_id"].strip("{}").split(",")  # the new load is known to the planner
    assert after["note"] == note_before  # not re-analyzed: 'new' is not among its values

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("insert into public.stats_probe select 3, 'newer' from generate_series(1, 200)")
        assert db.refresh_statistics(cur, "public.stats_probe", 200, ("load_id",), 0.1) is True
    assert "newer" in dict(query(stats))["note"]
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("drop table public.stats_probe")
