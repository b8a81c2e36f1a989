"""Runs of one date started together end with the data of one run, and no task's work is done twice.

Every scenario runs the second extract date (2026-11-21) on an empty warehouse, so each process also
meets the first date's tasks that the second chains to. The reference is one clean run of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability import DAY2, assert_same_as, create_database, querier, warehouse_checksums
from tests.test_ops import luigid  # noqa: F401 - the fixture

BIN = Path(sys.executable).parent
DAY = DAY2
SKIPPED = "already done: another process committed this task while this one waited for it"


@dataclass
class Reference:
    checksums: dict[str, str]
    markers: set[str]


@pytest.fixture(scope="module")
def reference(server_url, reliability_landing) -> Reference:
    from pipeline.core import db
    from pipeline.operations.runner import run_pipeline

    name, url = create_database(server_url)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DATABASE_URL", url)
            assert run_pipeline(DAY, landing=reliability_landing, trigger="test").success
        query = querier(url)
        yield Reference(
            checksums=warehouse_checksums(query),
            markers={marker for (marker,) in query("select update_id from meta.table_updates")},
        )
    finally:
        db.drop_database(name, server_url)


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        env={**os.environ, "METALAYER_TRIGGER": "test"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(processes: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def start_together(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Start the commands at the same moment and wait for all of them."""
    return finish([start(command) for command in commands])


def start_while_running(query, first: list[str], second: list[str]) -> list[subprocess.CompletedProcess]:
    """Start `second` as soon as `first` has started its run (holds the date's run lock)."""
    running = start(first)
    deadline = time.monotonic() + 60
    while not query("select 1 from meta.pipeline_runs where status = 'running'"):
        assert running.poll() is None and time.monotonic() < deadline, finish([running])[0].stderr[-3000:]
        time.sleep(0.01)
    return finish([running, start(second)])


def metalayer_run(landing: Path, *options: str) -> list[str]:
    return [str(BIN / "metalayer"), "run", "--date", str(DAY), "--landing", str(landing), "--trigger", "test", *options]


def assert_same_as_one_run(query, reference: Reference) -> None:
    assert_same_as(query, checksums=reference.checksums, markers=reference.markers)


def work_per_task(query) -> dict[str, list[str]]:
    """Each task id's recorded runs, by status: what did the work, what found it done."""
    return dict(query("select task_id, array_agg(status order by status) from meta.task_runs group by task_id"))


def test_a_second_run_of_a_date_exits_75(warehouse, query, reliability_landing, reference):
    """Local scheduler: the second run names the run in progress and leaves."""
    first, second = start_while_running(query, metalayer_run(reliability_landing), metalayer_run(reliability_landing))
    assert (first.returncode, second.returncode) == (0, 75), (first.stdout[-2000:], second.stderr[-2000:])
    assert f"metalayer: a run for {DAY} is already in progress: run {DAY}-" in second.stderr
    assert "(trigger test, started " in second.stderr and "metalayer run --wait" in second.stderr
    assert query("select status from meta.pipeline_runs") == [("success",)]
    assert_same_as_one_run(query, reference)
    assert set(map(tuple, work_per_task(query).values())) == {("success",)}


def test_a_second_run_of_a_date_with_wait_queues_and_finds_it_done(warehouse, query, reliability_landing, reference):
    first, second = start_while_running(
        query, metalayer_run(reliability_landing, "--wait"), metalayer_run(reliability_landing, "--wait")
    )
    assert (first.returncode, second.returncode) == (0, 0), (first.stdout[-2000:], second.stdout[-2000:])
    assert f"waiting: a run for {DAY} is already in progress" in second.stdout
    assert "Nothing to do: every task for this date is already complete." in second.stdout
    runs = query("""select runs.status, count(tasks.task_run_id) from meta.pipeline_runs as runs
                    left join meta.task_runs as tasks using (run_id)
                    group by runs.run_id, runs.status order by min(runs.started_at)""")
    assert runs == [("success", len(reference.markers)), ("success", 0)]
    assert_same_as_one_run(query, reference)


def test_two_plain_luigi_commands_for_a_date(warehouse, query, reliability_landing, reference):
    """No date lock here: per-task locks and markers keep the data right and do each task's work once."""
    # Luigi's own pid lock stops a second identical command line on the same host (exit 10,
    # [retcode] already_running); --no-lock lets both run, as two hosts or two command lines would.
    command = [
        str(BIN / "luigi"),
        "--module",
        "pipeline",
        "MasterTask",
        "--date",
        str(DAY),
        "--local-scheduler",
        "--landing-dir",
        str(reliability_landing),
        "--no-lock",
    ]
    done = start_together(command, command)
    assert [process.returncode for process in done] == [0, 0], [process.stderr[-3000:] for process in done]
    assert_same_as_one_run(query, reference)
    work = work_per_task(query)
    assert set(work) == reference.markers
    # Exactly one process did each task's work; the other either found it complete before scheduling
    # it or waited for it and recorded that it found it done.
    assert {tuple(statuses) for statuses in work.values()} <= {("success",), ("skipped", "success")}
    # The later process scheduled tasks the earlier one then did: it waited for them and did nothing.
    assert query("select distinct message from meta.task_runs where status = 'skipped'") == [(SKIPPED,)]
    assert query("select status, count(*) from meta.pipeline_runs group by 1") == [("success", 2)]


def test_two_runs_of_a_date_against_luigid(luigid, query, reliability_landing, reference):  # noqa: F811
    first, second = start_while_running(
        query,
        metalayer_run(reliability_landing, "--scheduler-url", luigid),
        metalayer_run(reliability_landing, "--scheduler-url", luigid),
    )
    assert (first.returncode, second.returncode) == (0, 75), (first.stdout[-2000:], second.stderr[-2000:])
    assert f"a run for {DAY} is already in progress" in second.stderr
    assert query("select status, scheduler from meta.pipeline_runs") == [("success", luigid)]
    assert_same_as_one_run(query, reference)
    assert set(map(tuple, work_per_task(query).values())) == {("success",)}


def test_four_workers_against_luigid(luigid, query, reliability_landing, reference):  # noqa: F811
    (done,) = start_together(metalayer_run(reliability_landing, "--scheduler-url", luigid, "--workers", "4"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert query("select status, workers from meta.pipeline_runs") == [("success", 4)]
    assert_same_as_one_run(query, reference)
    assert set(map(tuple, work_per_task(query).values())) == {("success",)}
    # The four workers did run side by side: some tasks overlapped in time.
    (overlapping,) = query("""select count(*) from meta.task_runs as one
                              inner join meta.task_runs as other on one.task_run_id < other.task_run_id
                                  and one.started_at < other.finished_at and other.started_at < one.finished_at""")[0]
    assert overlapping > 0
