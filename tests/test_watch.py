"""The landing watcher: `metalayer watch` as a subprocess against a landing dir this test writes into.

Dates are dropped file by file, one file keeps growing for longer than the
quiet period, one folder fails and is fixed, one carries `_SUCCESS`; runs are
read from meta.pipeline_runs (trigger 'watch'). LandingReady, the same rule for
plain Luigi runs, is checked with luigi.build.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import luigi
import pytest

from pipeline.core import db
from pipeline.core.landing import readiness
from pipeline.operations.watch import FolderTracker
from pipeline.sample.generate import generate
from pipeline.tasks_bronze import ErpSalesRaw, LandingReady
from tests.test_compose import load_compose

DAY = date(2026, 11, 20)
METALAYER = Path(sys.executable).with_name("metalayer")
FILES = ("crm_customers.csv", "erp_products.csv", "erp_sales.csv")


@pytest.fixture(scope="module")
def extracts(tmp_path_factory) -> Path:
    """Three small dates (a history and two deltas) to drop into the watched dir."""
    source = tmp_path_factory.mktemp("watch-extracts")
    generate(source, DAY, days=3, customers=300, orders=600, products=30)
    return source


class WatchProcess:
    def __init__(self, landing: Path, log: Path, quiet: float, poll: float = 0.2):
        self.log = log
        self.process = subprocess.Popen(
            [
                str(METALAYER),
                "watch",
                "--landing",
                str(landing),
                "--quiet-seconds",
                str(quiet),
                "--poll-seconds",
                str(poll),
            ],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until_watching(self, timeout: float = 60) -> None:
        self.wait_for(" watching ", timeout)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until the watcher has printed `text`."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert time.monotonic() < deadline and self.process.poll() is None, f"{text!r} not printed:\n{self.stop()}"
            time.sleep(0.1)

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.log.read_text()


@pytest.fixture
def watcher(tmp_path):
    started: list[WatchProcess] = []

    def start(landing: Path, quiet: float) -> WatchProcess:
        process = WatchProcess(landing, tmp_path / f"watch-{len(started)}.log", quiet)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def runs_of(query, day: date) -> list[tuple]:
    return query(
        "select status, trigger, extract(epoch from started_at)::float8 from meta.pipeline_runs "
        "where run_date = %s order by started_at",
        (day,),
    )


def wait_for_runs(query, day: date, count: int, process: WatchProcess, timeout: float = 120) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(query, day)
        if len(runs) >= count and all(status != "running" for status, _, _ in runs):
            return runs
        assert process.process.poll() is None, process.stop()
        time.sleep(0.2)
    raise AssertionError(f"{day}: {count} finished run(s) expected; log:\n{process.stop()}")


def drop(source: Path, landing: Path, day: date, names=FILES, pause: float = 0.0) -> float:
    """Copy the date's files into the landing folder one by one; returns the time of the last write."""
    folder = landing / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / day.isoformat() / name, folder / name)
        time.sleep(pause)
    return (folder / names[-1]).stat().st_mtime


def test_a_date_dropped_file_by_file_runs_once_a_growing_file_waits_and_a_failed_date_waits_for_new_files(
    warehouse, query, extracts, tmp_path, watcher
):
    landing = tmp_path / "landing"
    landing.mkdir()
    quiet = 2.0
    process = watcher(landing, quiet)
    first, second, third = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)

    # 1. Dropped file by file, a second apart: one run, quiet seconds after the last file.
    written = drop(extracts, landing, first, pause=1.0)
    ((status, trigger, started),) = wait_for_runs(query, first, 1, process)
    assert (status, trigger) == ("success", "watch")
    latency = started - written
    print(f"\nfirst date run {latency:.2f}s after its last file (quiet {quiet}s, poll 0.2s)")
    assert quiet - 0.2 <= latency <= quiet + 5

    # 2. A file still growing: nothing runs until it has stopped for the quiet period.
    drop(extracts, landing, second, names=FILES[:2])
    content = (extracts / second.isoformat() / "erp_sales.csv").read_bytes()
    sales = landing / second.isoformat() / "erp_sales.csv"
    steps = 12
    per_step = -(-len(content) // steps)
    for i in range(steps):
        with sales.open("ab") as fh:  # a writer that flushes part of a line at a time
            fh.write(content[i * per_step : (i + 1) * per_step])
        time.sleep(0.5)  # 6 s of writing, three times the quiet period
        assert runs_of(query, second) == [], "a run started on a folder whose file was still growing"
    grown = sales.stat().st_mtime
    assert sales.read_bytes() == content
    ((status, _, started),) = wait_for_runs(query, second, 1, process)
    assert status == "success" and started - grown >= quiet - 0.2
    print(f"grown date run {started - grown:.2f}s after its last write")

    # 3. A failed date is not run again while its files stay as they are; a corrected file runs it again.
    drop(extracts, landing, third, names=FILES[:2])
    folder = landing / third.isoformat()
    (folder / "erp_sales.csv").write_text("order_id,customer_id\nO1,C1\n")
    ((status, _, _),) = wait_for_runs(query, third, 1, process)
    assert status == "failed"
    # The watcher records the failure after the run's row is closed (a slow server widens that gap): wait for its
    # next look at the unchanged folder, then well past the quiet period.
    process.wait_for("failed before; run again when its files change")
    time.sleep(3 * quiet)
    assert len(runs_of(query, third)) == 1
    shutil.copyfile(extracts / third.isoformat() / "erp_sales.csv", folder / "erp_sales.csv")
    runs = wait_for_runs(query, third, 2, process)
    assert [status for status, _, _ in runs] == ["failed", "success"]

    # Never twice: well past the quiet period, each date still has its runs and no more.
    time.sleep(2 * quiet)
    assert [len(runs_of(query, day)) for day in (first, second, third)] == [1, 1, 2]
    assert query("select extract_date, status from meta.watched_dates order by 1") == [
        (first, "success"),
        (second, "success"),
        (third, "success"),
    ]
    # The compose service's healthcheck, run here: the watcher keeps its heartbeat file fresh.
    compose = load_compose()
    kind, line = compose["services"]["watcher"]["healthcheck"]["test"]
    home = compose["x-app"]["environment"]["METALAYER_HOME"]
    assert kind == "CMD-SHELL" and f"{home}/run/watch.alive" in line
    assert subprocess.run(["sh", "-c", line.replace(home, str(db.metalayer_home()))]).returncode == 0
    log = process.stop()
    assert log.count("failed before; run again when its files change") == 1 and log.endswith("stopped\n")
    assert process.process.returncode == 0


def test_a_success_file_runs_the_folder_at_once_and_a_date_delivered_before_is_not_run_again(
    warehouse, query, extracts, tmp_path, watcher
):
    from pipeline.operations.runner import run_pipeline

    landing = tmp_path / "landing"
    first, second, third = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
    drop(extracts, landing, first)
    assert run_pipeline(first, landing=landing, trigger="test").success  # delivered by another run
    process = watcher(landing, quiet=60)
    drop(extracts, landing, third)  # complete, but quiet for far less than 60 s: waits
    drop(extracts, landing, second)
    process.wait_until_watching()
    time.sleep(0.5)
    marked = time.time()
    (landing / second.isoformat() / "_SUCCESS").touch()
    ((status, trigger, started),) = wait_for_runs(query, second, 1, process, timeout=60)
    print(f"\n_SUCCESS folder run {started - marked:.2f}s after the marker (quiet 60s, poll 0.2s)")
    assert (status, trigger) == ("success", "watch") and started - marked < 5
    time.sleep(1)
    assert len(runs_of(query, first)) == 1 and runs_of(query, third) == []
    assert query("select extract_date, status from meta.watched_dates order by 1") == [
        (first, "delivered_before"),
        (second, "success"),
    ]


def test_readiness_rule_and_the_watchers_memory(tmp_path):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    assert readiness(folder, 5).reason.startswith("waiting for crm_customers.csv or crm_customers.jsonl")
    for name in FILES:
        (folder / name).write_text("x\n")
    now = time.time()
    assert not readiness(folder, 5, now=now).ready
    assert readiness(folder, 5, now=now + 6).ready
    # Old modification times (a copy that keeps them) are not enough: the watcher must see the folder still.
    for name in FILES:
        os.utime(folder / name, (now - 100, now - 100))
    clock = [0.0]
    tracker = FolderTracker(5, clock=lambda: clock[0])
    assert not tracker.check(DAY, folder).ready
    clock[0] = 4.0
    assert not tracker.check(DAY, folder).ready
    (folder / "erp_sales.csv").write_text("x\ny\n")  # grows: the clock starts again
    os.utime(folder / "erp_sales.csv", (now - 100, now - 100))
    clock[0] = 6.0
    assert not tracker.check(DAY, folder).ready
    clock[0] = 11.5
    assert tracker.check(DAY, folder).ready
    (folder / "_SUCCESS").touch()
    assert readiness(folder, 3600).ready


def test_landing_ready_makes_plain_luigi_report_a_folder_still_being_written_as_missing(
    warehouse, query, extracts, tmp_path, luigi_setting
):
    landing = tmp_path / "landing"
    drop(extracts, landing, DAY)
    task = ErpSalesRaw(date=DAY, landing_dir=str(landing))
    luigi_setting("watch", "ready_quiet_seconds", 1.5)
    assert LandingReady(date=DAY, landing_dir=str(landing)) in task.requires()
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status.name == "SCHEDULING_FAILED" or "MISSING_EXT" in result.status.name, result.summary_text
    assert query("select count(*) from bronze.erp_sales_raw") == [(0,)]
    time.sleep(1.6)
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status.name == "SUCCESS", result.summary_text
    assert query("select count(*) from bronze.erp_sales_raw")[0][0] > 0
    luigi_setting("watch", "ready_quiet_seconds", 0)
    assert not isinstance(ErpSalesRaw(date=DAY, landing_dir=str(landing)).requires(), list)
