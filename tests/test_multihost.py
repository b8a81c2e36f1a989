"""Workers on several hosts: two worker processes with their own METALAYER_HOME, one luigid, one database.

Each process stands for a host: its own state dir (logs, Luigi's pid lock), the
shared warehouse through DATABASE_URL and the shared landing dir. Every scenario
runs the second extract date on an empty warehouse (so the first date's tasks it
chains to are built too) and must end with one single-worker run's data, every
process exiting 0, and closed run records.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.reliability import DAY2
from tests.test_concurrency import (
    BIN,
    assert_same_as_one_run,
    finish,
    metalayer_run,
    reference,  # noqa: F401 - the fixture
    work_per_task,
)
from tests.test_ops import luigid  # noqa: F401 - the fixture

DAY = DAY2


def host(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of one worker host: its own METALAYER_HOME, the shared DATABASE_URL."""
    home = tmp_path / name
    home.mkdir()
    return {**os.environ, "METALAYER_HOME": str(home), "METALAYER_TRIGGER": "test"}


def start_on(env: dict[str, str], command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def plain_luigi(landing: Path, scheduler_url: str, env: dict[str, str], *options: str) -> list[str]:
    # Luigi's pid lock lives in each host's own state dir, as on two machines.
    return [
        str(BIN / "luigi"),
        "--module",
        "pipeline",
        "MasterTask",
        "--date",
        str(DAY),
        "--landing-dir",
        str(landing),
        "--scheduler-url",
        scheduler_url,
        "--lock-pid-dir",
        str(Path(env["METALAYER_HOME"]) / "luigi-lock"),
        *options,
    ]


def assert_run_records_closed(query) -> None:
    assert query("select count(*) from meta.pipeline_runs where status = 'running' or finished_at is null") == [(0,)]
    assert query("select count(*) from meta.task_runs where status = 'running' or finished_at is null") == [(0,)]
    # Every task run belongs to a recorded run.
    assert query("""select count(*) from meta.task_runs
                    where run_id not in (select run_id from meta.pipeline_runs)""") == [(0,)]


def test_two_hosts_running_plain_luigi_with_two_workers_each(
    luigid,  # noqa: F811
    query,
    reliability_landing,
    reference,  # noqa: F811
    tmp_path,
):
    one, two = host(tmp_path, "host-1"), host(tmp_path, "host-2")
    processes = [start_on(env, plain_luigi(reliability_landing, luigid, env, "--workers", "2")) for env in (one, two)]
    done = finish(processes)
    assert [process.returncode for process in done] == [0, 0], [process.stderr[-3000:] for process in done]
    assert_same_as_one_run(query, reference)
    work = work_per_task(query)
    assert set(work) == reference.markers
    assert {tuple(statuses) for statuses in work.values()} <= {("success",), ("skipped", "success")}
    # One run per luigi command, whichever forked worker ran its tasks; both closed as successful.
    runs = query("select run_id, status, error from meta.pipeline_runs")
    assert 1 <= len(runs) <= 2 and {(status, error) for _, status, error in runs} == {("success", None)}, runs
    pids = query("select count(distinct pid) from meta.task_runs")[0][0]
    assert pids > len(runs)  # tasks ran in forked worker processes, under their command's run id
    assert_run_records_closed(query)


def test_a_second_host_joins_the_run_in_progress(
    luigid,  # noqa: F811
    query,
    warehouse,
    reliability_landing,
    reference,  # noqa: F811
    tmp_path,
):
    from pipeline.core import db

    one, two = host(tmp_path, "host-1"), host(tmp_path, "host-2")
    # Every load records itself in meta.ingested_files: holding a share lock on it stops each host in its
    # first bronze task, until both have one, so that the second host surely does part of the work.
    gate = db.connect(warehouse)
    try:
        with gate.cursor() as cur:
            cur.execute("lock table meta.ingested_files in share mode")
        first = start_on(one, metalayer_run(reliability_landing, "--scheduler-url", luigid))
        deadline = time.monotonic() + 60
        while not query("select 1 from meta.pipeline_runs where status = 'running'"):
            assert first.poll() is None and time.monotonic() < deadline, finish([first])[0].stderr[-3000:]
            time.sleep(0.05)
        second = start_on(two, metalayer_run(reliability_landing, "--join"))  # the run's luigid, from its record
        while query("select count(distinct pid) from meta.task_runs where status = 'running'") != [(2,)]:
            assert first.poll() is None and second.poll() is None and time.monotonic() < deadline + 60, [
                process.communicate()[1][-3000:] for process in (first, second) if process.poll() is not None
            ]
            time.sleep(0.05)
    finally:
        gate.rollback()
        gate.close()
    done = finish([first, second])
    assert [process.returncode for process in done] == [0, 0], [process.stdout[-3000:] for process in done]
    ((run_id, status, error),) = query("select run_id, status, error from meta.pipeline_runs")
    assert (status, error) == ("success", None)
    assert f"MetaLayer worker joining run {run_id}" in done[1].stdout
    assert f"Joined run {run_id}: SUCCESS" in done[1].stdout
    # Both hosts' tasks are recorded under the one run.
    assert query("select distinct run_id from meta.task_runs") == [(run_id,)]
    assert {pid for (pid,) in query("select distinct pid from meta.task_runs")} == {first.pid, second.pid}
    assert_same_as_one_run(query, reference)
    assert {tuple(statuses) for statuses in work_per_task(query).values()} <= {("success",), ("skipped", "success")}
    assert_run_records_closed(query)


def test_join_refuses_a_run_on_a_local_scheduler(warehouse, query, reliability_landing, tmp_path):
    from pipeline.core.runs import date_lock, start_run

    run_id = start_run(warehouse, DAY, "test", scheduler="local")
    with date_lock(warehouse, DAY, run_id):
        done = subprocess.run(
            metalayer_run(reliability_landing, "--join"),
            env=host(tmp_path, "host-2"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 75, done.stderr
    assert f"a run for {DAY} is already in progress: run {run_id}" in done.stderr
    assert "uses a local scheduler" in done.stderr and "Traceback" not in done.stderr
    assert query("select count(*) from meta.task_runs") == [(0,)]
