"""Database faults: the server restarting under a run, a lock held too long, a statement too slow, a server
that does not answer. Each ends in a run that retried and succeeded or failed cleanly, and the next run
leaves the data of clean runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO_ROOT
from tests.reliability import DAY1, DAY2, assert_consistent, assert_same_as

METALAYER = str(Path(sys.executable).with_name("metalayer"))


def embedded(server_url: str) -> bool:
    """Whether the tests' server is the embedded one of this session (which a test may restart)."""
    from pipeline.core import db

    return make_url(server_url).query.get("host") == str(db.metalayer_home() / "pgdata") and db.embedded_is_running()


def wait_for_backend(query, application: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not query("select 1 from pg_stat_activity where application_name = %s and state = 'active'", (application,)):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f"{application} never became active"
        time.sleep(0.002)


def test_server_restart_in_the_middle_of_a_run(warehouse, query, server_url, reliability_reference):
    """`pg_ctl restart -m fast` while silver sales runs: the cut task retries and the run succeeds;
    the next run leaves the data of clean runs."""
    from pipeline.core import db
    from pipeline.operations.runner import run_pipeline

    env = {**os.environ, "DATABASE_URL": warehouse}
    process = subprocess.Popen(
        [METALAYER, "run", "--date", str(DAY1), "--landing", str(reliability_reference.landing), "--trigger", "test"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_backend(query, f"metalayer SilverSales {DAY1}", process)
        if embedded(server_url):
            assert db.restart_embedded()
        else:  # a server of DATABASE_URL's: cut every session of the run instead
            query("""select pg_terminate_backend(pid) from pg_stat_activity
                     where datname = current_database() and application_name like 'metalayer %%'""")
        output = process.communicate(timeout=300)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    # The cut attempt failed, and a later one (in the task, or Luigi's retry when the restart took longer
    # than the task's own retries) succeeded. A failure is recorded once the server is back, or, when no
    # attempt of the task outlived the outage, by the end of the run.
    attempts = query("select status, error from meta.task_runs where task_family = 'SilverSales' order by started_at")
    assert [status for status, _ in attempts] == ["failed"] * (len(attempts) - 1) + ["success"], attempts
    assert len(attempts) >= 2
    assert all(
        error == "interrupted: the attempt ended while the database was unreachable"
        or (
            error.startswith("OperationalError: ")
            and any(
                text in error
                for text in (
                    "terminating connection due to administrator command",
                    "server closed the connection unexpectedly",
                    "the database system is shutting down",
                    "the database system is starting up",
                    "No such file",
                )
            )
        )
        for _, error in attempts[:-1]
    ), attempts
    assert query("select status, error from meta.pipeline_runs") == [("success", None)]
    (log_file,) = query("select log_file from meta.pipeline_runs")[0]
    assert f"SilverSales_{DAY1:%Y_%m_%d}" in Path(log_file).read_text().split("transient database error")[0]
    assert query("select count(*) from meta.task_runs where status = 'running'") == [(0,)]
    assert_consistent(query)

    assert run_pipeline(DAY2, landing=reliability_reference.landing, trigger="test").success
    assert_same_as(query, reliability_reference)


def test_server_down_longer_than_the_retries_fails_the_run_cleanly(
    warehouse, query, server_url, reliability_reference, tmp_path
):
    """The server stops while silver sales runs and stays down: the run gives up with exit 1 and a message
    (no traceback), nothing half-written; once the server is back the next run marks it abandoned and
    completes, and the data equal clean runs'."""
    from pipeline.core import db
    from pipeline.operations.runner import run_pipeline

    if not embedded(server_url):
        pytest.skip("stops the server: only the tests' own embedded one")
    config = tmp_path / "luigi.cfg"  # one Luigi attempt per task: the run gives up after the in-task retries
    config.write_text(
        (REPO_ROOT / "tests" / "luigi.test.cfg").read_text().replace("[scheduler]\n", "[scheduler]\nretry_count = 1\n")
    )
    env = {**os.environ, "DATABASE_URL": warehouse, "LUIGI_CONFIG_PATH": str(config)}
    process = subprocess.Popen(
        [METALAYER, "run", "--date", str(DAY1), "--landing", str(reliability_reference.landing), "--trigger", "test"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_backend(query, f"metalayer SilverSales {DAY1}", process)
        assert db.stop_embedded()
        output = process.communicate(timeout=300)[0]
    finally:
        if process.poll() is None:
            process.kill()
        # Back as any later process would bring it: the first to need it starts it.
        subprocess.run(
            [METALAYER, "db", "url"],
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            check=True,
            capture_output=True,
        )
    assert process.returncode == 1, output[-3000:]
    assert "FAILED in" in output and "the database could not be reached to record the end of the run" in output
    assert "The next run of this date marks this run failed (abandoned)." in output
    assert str(REPO_ROOT / "pipeline" / "runner.py") not in output  # no traceback through the runner
    ((run_id, status),) = query("select run_id, status from meta.pipeline_runs")
    assert status == "running"
    assert not query("select 1 from meta.table_updates where update_id like 'SilverSales%%'")
    assert_consistent(query)

    assert run_pipeline(DAY1, landing=reliability_reference.landing, trigger="test").success
    status, error = query("select status, error from meta.pipeline_runs where run_id = %s", (run_id,))[0]
    assert status == "failed" and error.startswith("abandoned"), error
    assert query("select count(*) from meta.task_runs where status = 'running'") == [(0,)]
    assert run_pipeline(DAY2, landing=reliability_reference.landing, trigger="test").success
    assert_same_as(query, reliability_reference)


@pytest.fixture
def held_lock(warehouse):
    """Hold a share lock on a table (reads pass, writes wait) in an open transaction until released."""
    from psycopg2 import sql

    from pipeline.core import db

    conn = db.connect(warehouse, application_name="test lock holder")

    def hold(schema: str, table: str) -> None:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("lock table {} in share mode").format(sql.Identifier(schema, table)))

    hold.release = conn.rollback
    yield hold
    conn.close()


def test_lock_held_past_lock_timeout_is_a_transient_error_retried_in_the_task(
    warehouse, query, reliability_reference, luigi_setting, held_lock
):
    from pipeline.operations.runner import run_pipeline

    luigi_setting("operations", "lock_timeout_seconds", 0.5)
    luigi_setting("retries", "SilverSales", 1)  # no Luigi retry: a success can only come from the task's own
    held_lock("silver", "sales")

    def release_after_first_failure() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not query(
            "select 1 from meta.task_runs where task_family = 'SilverSales' and status = 'failed'"
        ):
            time.sleep(0.02)
        held_lock.release()

    releaser = threading.Thread(target=release_after_first_failure)
    releaser.start()
    result = run_pipeline(DAY1, landing=reliability_reference.landing, trigger="test", upto="silver")
    releaser.join()
    assert result.success, result.luigi_summary
    attempts = query("select status, error from meta.task_runs where task_family = 'SilverSales' order by started_at")
    assert [status for status, _ in attempts][-1] == "success" and len(attempts) >= 2, attempts
    assert all(
        error.startswith("LockNotAvailable: canceling statement due to lock timeout") for status, error in attempts[:-1]
    ), attempts
    assert_consistent(query)


def test_statement_past_statement_timeout_fails_the_task_without_a_retry(
    warehouse, query, reliability_reference, luigi_setting, held_lock
):
    """A statement that runs too long is a hang, not a hiccup: cancelled, and not retried in the task."""
    from pipeline.operations.runner import run_pipeline

    luigi_setting("operations", "statement_timeout_seconds", 0.5)
    luigi_setting("operations", "lock_timeout_seconds", 0)  # waits count against the statement timeout only
    luigi_setting("retries", "SilverSales", 1)
    held_lock("silver", "sales")
    result = run_pipeline(DAY1, landing=reliability_reference.landing, trigger="test", upto="silver")
    held_lock.release()
    assert not result.success
    attempts = query("select status, error from meta.task_runs where task_family = 'SilverSales'")
    assert len(attempts) == 1 and attempts[0][0] == "failed"
    assert attempts[0][1].startswith("QueryCanceled: canceling statement due to statement timeout"), attempts
    assert not query("select 1 from silver.sales")
    assert query("select status from meta.pipeline_runs") == [("failed",)]
    assert_consistent(query)

    luigi_setting("operations", "statement_timeout_seconds", 7200)
    assert run_pipeline(DAY1, landing=reliability_reference.landing, trigger="test", upto="silver").success
    assert_consistent(query)


def test_a_server_that_does_not_answer_is_an_error_after_the_connect_timeout(warehouse):
    """A listening socket that never speaks: the connection gives up after connect_timeout, a transient error."""
    import psycopg2

    from pipeline.base import is_transient
    from pipeline.core import db

    assert db.connect(warehouse).get_dsn_parameters()["connect_timeout"] == str(db.CONNECT_TIMEOUT_SECONDS) == "10"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql://metalayer@127.0.0.1:{silent.getsockname()[1]}/metalayer?connect_timeout=1"
        started = time.monotonic()
        with pytest.raises(psycopg2.OperationalError, match="timeout expired") as error:
            db.connect(url)
    assert 0.9 < time.monotonic() - started < 5
    assert is_transient(error.value)
