"""Operations on a real warehouse: luigid, backfill, rerun, cron and its lock, retries, SLA, alerts, purge."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port, table_checksums

METALAYER = str(Path(sys.executable).with_name("metalayer"))
DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)
WAREHOUSE_FAMILIES = {
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
    "CustomerPurchaseSummary",
    "CustomerClv",
    "BusinessKpis",
    "Anomalies",
}
GOLD_FAMILIES = {
    "DimDate",
    "DimProduct",
    "DimCustomer",
    "FactSales",
    "AggDailySales",
    "AggMonthlySales",
    "CustomerAnalytics",
    "ProductAnalytics",
    "CohortRetention",
    "CustomerPurchaseSummary",
    "CustomerClv",
    "BusinessKpis",
    "Anomalies",
}  # anomalies are scored after gold


def metalayer(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [METALAYER, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=timeout, check=False
    )


def http_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - localhost test server
        return json.loads(response.read())


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def luigid(warehouse, tmp_path):
    """A real luigid started by `metalayer luigid` on a free port, its history in the test warehouse."""
    port = free_port()
    env = {**os.environ, "METALAYER_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        [METALAYER, "luigid", "--port", str(port), "--address", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/api/task_list?data={}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_master_task_with_two_workers_against_luigid(luigid, query, seed_landing):
    done = metalayer(
        "run", "--date", str(DAY1), "--landing", str(seed_landing), "--workers", "2", "--scheduler-url", luigid
    )
    assert done.returncode == 0, done.stdout + done.stderr

    data = json.dumps({"status": "DONE", "upstream_status": "", "search": ""})
    tasks = http_json(f"{luigid}/api/task_list?data={urllib.request.quote(data)}")["response"]
    families = {task["name"] for task in tasks.values()}
    assert WAREHOUSE_FAMILIES | {"MasterTask", "LandingFile"} <= families
    # Progress reported by every warehouse task reaches the visualiser.
    progress = {task["name"]: task.get("progress_percentage") for task in tasks.values()}
    assert all(progress[family] == 100 for family in WAREHOUSE_FAMILIES), progress
    assert any("rows out" in (task.get("status_message") or "") for task in tasks.values())

    history = dict(query("select name, count(*) from luigi_history.tasks group by name"))
    assert WAREHOUSE_FAMILIES <= set(history)
    events = {event for (event,) in query("select distinct event_name from luigi_history.task_events")}
    assert {"PENDING", "RUNNING", "DONE"} <= events

    with urllib.request.urlopen(f"{luigid}/metrics", timeout=10) as response:  # noqa: S310
        metrics = response.read().decode()
    for family in ("FactSales", "SilverSales", "ErpSalesRaw", "CustomerClv"):
        assert f'luigi_task_done_total{{family="{family}"}} 1.0' in metrics
    assert query("select trigger, status, workers, scheduler from meta.pipeline_runs") == [
        ("cli", "success", 2, luigid)
    ]

    # The next night's backfill and a rerun go through the same luigid.
    done = metalayer(
        "backfill", "--start", str(DAY1), "--end", str(DAY2), "--landing", str(seed_landing), "--scheduler-url", luigid
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = metalayer(
        "rerun",
        "SilverSales",
        "--no-downstream",
        "--date",
        str(DAY2),
        "--landing",
        str(seed_landing),
        "--scheduler-url",
        luigid,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = query("""select trigger, status, scheduler, (select array_agg(distinct task_family order by task_family)
                                                        from meta.task_runs where task_runs.run_id = runs.run_id)
                    from meta.pipeline_runs as runs order by started_at""")
    assert [run[:3] for run in runs] == [
        ("cli", "success", luigid),
        ("backfill", "success", luigid),
        ("backfill", "success", luigid),
        ("cli", "success", luigid),
    ]
    assert runs[1][3] is None  # DAY1 was done
    assert set(runs[2][3]) == WAREHOUSE_FAMILIES and runs[3][3] == ["SilverSales"]


def test_backfill_runs_dates_in_order_and_reports_missing_folders(warehouse, query, tmp_path):
    from pipeline.operations.maintenance import backfill
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, DAY1, days=3, customers=600, orders=900)
    day3 = date(2026, 11, 22)

    result = backfill(DAY1, date(2026, 11, 23), landing=landing, on_missing="skip")
    assert [run.run_date for run in result.runs] == [DAY1, DAY2, day3]
    assert all(run.success for run in result.runs)
    assert result.missing == [date(2026, 11, 23)]
    rows = query("select run_date, trigger, status from meta.pipeline_runs order by started_at")
    assert rows == [(DAY1, "backfill", "success"), (DAY2, "backfill", "success"), (day3, "backfill", "success")]
    # Each date's graph ran once: one marker per warehouse task and date.
    assert query("select count(*) from meta.table_updates") == [(3 * len(WAREHOUSE_FAMILIES),)]

    # The default policy stops at the first missing folder; later dates chain to it.
    (landing / "2026-11-25").mkdir()
    stopped = metalayer("backfill", "--start", "2026-11-24", "--end", "2026-11-25", "--landing", str(landing))
    assert stopped.returncode == 1
    assert "no extract folder" in stopped.stdout and "2026-11-24" in stopped.stdout
    assert query("select count(*) from meta.pipeline_runs") == [(3,)]


def test_rerun_of_a_silver_task_reruns_silver_and_gold_not_bronze_and_gold_is_identical(warehouse, query, seed_landing):
    from pipeline.operations.maintenance import rerun, select_tasks
    from pipeline.operations.runner import run_pipeline

    def warehouse_tables() -> dict:
        # Change-tracking bookkeeping of the incremental aggregates is not warehouse data.
        sums = table_checksums(query, "gold") | table_checksums(query, "silver")
        return {table: digest for table, digest in sums.items() if not table.startswith("fact_sales_")}

    assert run_pipeline(DAY1, landing=seed_landing).success
    before = warehouse_tables()
    markers = query("select count(*) from meta.table_updates")[0][0]

    chosen = {task.task_family for task in select_tasks("SilverSales", DAY1, seed_landing)}
    assert chosen == {"SilverSales", "SilverQualityGate"} | GOLD_FAMILIES  # gold requires the gate

    done = metalayer("rerun", "SilverSales", "--date", str(DAY1), "--landing", str(seed_landing))
    assert done.returncode == 0, done.stdout + done.stderr
    (run_id,) = query("select run_id from meta.pipeline_runs order by started_at desc limit 1")[0]
    ran = {family for (family,) in query("select task_family from meta.task_runs where run_id = %s", (run_id,))}
    assert ran == chosen
    assert not ran & {"CrmCustomersRaw", "ErpProductsRaw", "ErpSalesRaw", "SilverCustomers", "SilverProducts"}
    assert warehouse_tables() == before
    assert query("select count(*) from meta.table_updates") == [(markers,)]

    # Without downstream only the task itself runs again; a layer name reruns the layer and what follows it.
    result = rerun("FactSales", DAY1, downstream=False, landing=seed_landing, trigger="test")
    assert {task["task_family"] for task in result.tasks} == {"FactSales"}
    # A task below complete ones (Luigi never looks under a complete task) runs too.
    result = rerun("SilverSales", DAY1, downstream=False, landing=seed_landing, trigger="test")
    assert {task["task_family"] for task in result.tasks} == {"SilverSales"}
    assert query("select count(*) from meta.table_updates") == [(markers,)]
    assert warehouse_tables() == before
    result = rerun("gold", DAY1, landing=seed_landing, trigger="test")
    assert {task["task_family"] for task in result.tasks} == GOLD_FAMILIES
    assert warehouse_tables() == before

    # --full-refresh: the incremental tables recompute from the whole fact, and come out the same.
    done = metalayer("rerun", "AggDailySales", "--full-refresh", "--date", str(DAY1), "--landing", str(seed_landing))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(full refresh)" in done.stdout
    messages = dict(
        query("""select task_family, message from meta.task_runs where run_id =
                             (select run_id from meta.pipeline_runs order by started_at desc limit 1)""")
    )
    assert messages["AggDailySales"].startswith("recomputed from the whole fact"), messages
    assert warehouse_tables() == before


def test_arguments_that_can_not_work_are_refused_with_a_message_not_a_traceback():
    done = metalayer("rerun", "SilverSale", "--date", str(DAY1))
    assert done.returncode == 2
    assert "unknown task 'SilverSale'" in done.stderr and "SilverSales" in done.stderr
    for args, message in [
        (
            ("backfill", "--start", str(DAY2), "--end", str(DAY1)),
            f"metalayer backfill: --end {DAY1} is before --start {DAY2}",
        ),
        (("purge", "--keep-days", "0"), "metalayer purge: --keep-days must be at least 1, not 0"),
        (("schedule", "--cron", "every day"), "metalayer schedule: not a five-field cron schedule"),
    ]:
        done = metalayer(*args)
        assert (done.returncode, "Traceback" in done.stderr) == (2, False), done.stderr
        assert message in done.stderr


def test_cron_entry_runs_the_day_and_overlapping_runs_do_not_double_process(warehouse, query, tmp_path):
    from pipeline.operations.maintenance import CRON_TAG, cron_entry, merge_crontab
    from pipeline.sample.generate import generate

    today = date.today()
    landing = tmp_path / "landing"
    generate(landing, today, days=1, customers=3000, orders=20000)
    home = tmp_path / "home"
    entry = cron_entry("30 1 * * *", home=home, landing=landing)
    fields = entry.split(" ", 5)
    assert fields[:5] == ["30", "1", "*", "*", "*"]
    assert entry.endswith(CRON_TAG)
    command = fields[5].removesuffix(CRON_TAG).strip()
    assert "run --trigger cron" in command and str(home / "logs" / "cron.log") in command

    (home / "logs").mkdir(parents=True)
    first = subprocess.Popen(["/bin/sh", "-c", command], env=os.environ.copy())
    # The second starts once the first holds the date's run lock.
    deadline = time.monotonic() + 60
    while not query("select 1 from meta.pipeline_runs where status = 'running'"):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = subprocess.run(["/bin/sh", "-c", command], env=os.environ.copy(), timeout=120, check=False)
    assert first.wait(timeout=300) == 0
    assert second.returncode == 75

    log = (home / "logs" / "cron.log").read_text()
    assert f"a run for {today} is already in progress" in log
    assert "SUCCESS" in log
    assert query("select run_date, trigger, status from meta.pipeline_runs") == [(today, "cron", "success")]
    counts = query("select task_family, count(*) from meta.task_runs group by 1")
    assert {family for family, _ in counts} == WAREHOUSE_FAMILIES
    assert all(n == 1 for _, n in counts)

    crontab = "MAILTO=ops\n0 3 * * * backup # other\n" + entry.replace("30 1", "0 2") + "\n"
    merged = merge_crontab(crontab, entry)
    assert merged.splitlines() == ["MAILTO=ops", "0 3 * * * backup # other", entry]


def test_transient_database_error_is_retried_inside_the_task(warehouse, query, seed_landing):
    """The server drops the task's connection mid-statement; the task retries and the run succeeds."""
    from pipeline.operations.runner import run_pipeline

    killed = []

    def kill_silver_sales() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            rows = query(
                """select pid from pg_stat_activity
                            where state = 'active' and datname = current_database()
                              and application_name = %s""",
                (f"metalayer SilverSales {DAY1}",),
            )
            if rows:
                query("select pg_terminate_backend(%s)", (rows[0][0],))
                killed.append(rows[0][0])
            time.sleep(0.005)

    killer = threading.Thread(target=kill_silver_sales)
    killer.start()
    result = run_pipeline(DAY1, landing=seed_landing, trigger="test")
    killer.join()
    assert killed, "the test never caught the silver sales statement"
    assert result.success
    attempts = query("select status, error from meta.task_runs where task_family = 'SilverSales' order by started_at")
    assert [status for status, _ in attempts] == ["failed", "success"]
    assert attempts[0][1].startswith("OperationalError:")
    assert "terminating connection" in attempts[0][1] or "server closed the connection" in attempts[0][1]
    assert query("select count(*) from meta.table_updates") == [(len(WAREHOUSE_FAMILIES),)]


def test_failed_task_is_retried_by_luigi_with_the_configured_policy(warehouse, query, seed_landing):
    """A missing table fails silver customers; it is back before Luigi's retry, which succeeds."""
    from pipeline.base import WarehouseTask
    from pipeline.operations.runner import run_pipeline
    from pipeline.tasks_silver import SilverCustomers, SilverQualityGate

    assert SilverQualityGate(date=DAY1).retry_count == 1  # luigi.cfg [retries]
    assert SilverCustomers(date=DAY1).retry_count is None  # [scheduler] retry_count applies
    assert isinstance(SilverCustomers(date=DAY1), WarehouseTask)
    from pipeline.core import db

    db.ensure_bootstrapped(warehouse)  # once per process: the run does not recreate the table below
    query("alter table silver.customer_versions rename to customer_versions_away")

    def restore_after_first_failure() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if query("select 1 from meta.task_runs where task_family = 'SilverCustomers' and status = 'failed'"):
                query("alter table silver.customer_versions_away rename to customer_versions")
                return
            time.sleep(0.02)

    fixer = threading.Thread(target=restore_after_first_failure)
    fixer.start()
    result = run_pipeline(DAY1, landing=seed_landing, trigger="test")
    fixer.join()
    assert result.success, result.luigi_summary
    assert result.luigi_status == "SUCCESS_WITH_RETRY"
    statuses = [
        s
        for (s,) in query("select status from meta.task_runs where task_family = 'SilverCustomers' order by started_at")
    ]
    assert statuses == ["failed", "success"]


class Collector(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append({"content_type": self.headers["Content-Type"], "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Collector.received
    server.shutdown()


def test_sla_breach_is_recorded_and_posted_to_the_webhook(warehouse, query, seed_landing, luigi_setting, webhook):
    from pipeline.operations.runner import run_pipeline

    url, received = webhook
    luigi_setting("alerts", "webhook_url", url)
    for layer in ("bronze", "silver", "gold", "run"):
        luigi_setting("sla", f"{layer}_minutes", 0.0001)  # 6 ms
    result = run_pipeline(DAY1, landing=seed_landing, trigger="test")
    assert result.success  # an SLA miss is reported, it does not fail the run

    misses = query("select run_id, run_date, layer, threshold_minutes, message from meta.sla_misses order by layer")
    assert [(run_id, day, layer) for run_id, day, layer, _, _ in misses] == [
        (result.run_id, DAY1, layer) for layer in ("bronze", "gold", "run", "silver")
    ]
    assert all(float(minutes) == 0.0001 for *_, minutes, _ in misses)
    assert all("SLA" in message or "not done" in message for *_, message in misses)
    posted = [item["body"] for item in received if item["body"]["kind"] == "sla_missed"]
    assert sorted(body["summary"].split(" ")[0] for body in posted) == ["bronze", "gold", "run", "silver"]
    assert all(item["content_type"] == "application/json" for item in received)
    body = posted[0]
    assert body["run_id"] == result.run_id and body["run_date"] == str(DAY1)
    assert any(hint.startswith("run log: ") for hint in body["where_to_look"])
    assert query("select channel, kind, delivered, count(*) from meta.alerts group by 1, 2, 3") == [
        ("webhook", "sla_missed", True, 4)
    ]


def test_failure_and_low_quality_alerts_reach_a_real_smtp_server(warehouse, query, tmp_path, luigi_setting):
    from aiosmtpd.controller import Controller

    from pipeline.operations.runner import run_pipeline

    class Inbox:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            Inbox.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        luigi_setting("alerts", "email", "true")
        luigi_setting("email", "receiver", "ops@example.com, oncall@example.com")
        luigi_setting("email", "sender", "metalayer@example.com")
        luigi_setting("smtp", "host", "127.0.0.1")
        luigi_setting("smtp", "port", controller.port)
        luigi_setting("smtp", "no_tls", "true")
        # The hand-checked fixture scores below 95%: the default gate fails the run.
        result = run_pipeline(DAY1, landing=REPO_ROOT / "tests" / "data" / "small", trigger="test")
    finally:
        controller.stop()
    assert not result.success
    # Long subjects are folded on the wire; unfold them.
    subjects = {" ".join(str(message["Subject"]).split()): (rcpt, message) for rcpt, message in Inbox.messages}
    failed = next(subject for subject in subjects if subject.startswith("[MetaLayer] run failed"))
    rcpt, message = subjects[failed]
    assert rcpt == ["ops@example.com", "oncall@example.com"]
    assert str(DAY1) in failed and "SilverQualityGate" in failed, failed
    body = message.get_payload()
    assert result.run_id in body and "QualityGateFailed" in body and "Where to look" in body
    low = next(subject for subject in subjects if subject.startswith("[MetaLayer] quality below threshold"))
    (score,) = query("select score from meta.quality_scores where table_name = '*' and dimension = 'overall'")[0]
    assert 0 < score < 0.95
    assert f"quality score {float(score) * 100:.2f}% below the 95.00% threshold" in low
    assert query("select kind, delivered from meta.alerts order by kind") == [
        ("quality_below_threshold", True),
        ("run_failed", True),
    ]


def test_purge_removes_only_what_is_past_the_window(warehouse, query, seed_landing):
    from pipeline.operations.maintenance import purge
    from pipeline.operations.runner import run_pipeline

    for day in (DAY1, DAY2):
        assert run_pipeline(day, landing=seed_landing, trigger="test").success

    def silver_and_gold() -> dict:  # the quarantine is retention's to purge; the rest must not change
        sums = table_checksums(query, "silver") | table_checksums(query, "gold")
        return {table: digest for table, digest in sums.items() if table != "silver.quarantine"}

    kept = silver_and_gold()
    markers = query("select count(*) from meta.table_updates")
    day2_bronze = query("select count(*) from bronze.erp_sales_raw where _extract_date = %s", (DAY2,))
    day2_quarantine = query("select count(*) from silver.quarantine where extract_date = %s", (DAY2,))
    assert day2_bronze[0][0] > 0 and day2_quarantine[0][0] > 0
    day1_sales = query("select count(*) from bronze.erp_sales_raw where _extract_date = %s", (DAY1,))[0][0]

    result = purge(keep_days=1, today=date(2026, 11, 22))
    assert result.cutoff == DAY2
    assert result.deleted["bronze.erp_sales_raw_rows"] == day1_sales
    assert result.deleted["meta.pipeline_runs"] == 1 and result.deleted["meta.ingested_files"] == 3
    assert query("select count(*) from bronze.erp_sales_raw where _extract_date = %s", (DAY1,)) == [(0,)]
    assert query("select count(*) from silver.quarantine where extract_date < %s", (DAY2,)) == [(0,)]
    assert query("select count(*) from meta.pipeline_runs where run_date = %s", (DAY1,)) == [(0,)]
    assert query("select count(*) from bronze.erp_sales_raw where _extract_date = %s", (DAY2,)) == day2_bronze
    assert query("select count(*) from silver.quarantine where extract_date = %s", (DAY2,)) == day2_quarantine
    assert query("select run_date from meta.pipeline_runs") == [(DAY2,)]
    assert query("select distinct run_date from meta.lineage") == [(DAY2,)]  # with their task runs
    assert silver_and_gold() == kept
    assert query("select count(*) from meta.table_updates") == markers
    with pytest.raises(ValueError, match="at least 1"):
        purge(keep_days=0)


def test_schedule_command_prints_the_entry():
    done = metalayer("schedule", "--cron", "15 4 * * 1-5")
    assert done.returncode == 0
    line = done.stdout.strip()
    assert line.startswith("15 4 * * 1-5 cd ") and shlex.split(line.split(" cd ", 1)[1])[0] == str(REPO_ROOT)
    assert "--scheduler-url" not in line
    central = metalayer("schedule", "--scheduler-url", "http://luigid:8082").stdout
    assert " run --trigger cron --scheduler-url http://luigid:8082 >> " in central
    bad = metalayer("schedule", "--cron", "every day")
    assert bad.returncode != 0 and "five-field" in bad.stderr
