"""The exporter, the Pushgateway push, the alert rules and the dashboard, with the real Prometheus.

The smoke test starts the stack's services natively with the commands of
docker-compose.yml (luigid, the exporter, Debian's prometheus-pushgateway and
prometheus on a copy of monitoring/prometheus.yml with localhost targets),
runs the pipeline the way the scheduler's cron line does, and asserts through
Prometheus's HTTP API that the series equal what the database holds, that the
alert rules load and fire, and that every dashboard query names a metric
Prometheus has.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.core import db
from tests.conftest import free_port
from tests.test_compose import interpolate, load_compose

REPO_ROOT = Path(__file__).resolve().parent.parent
MONITORING = REPO_ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "metalayer.json"
METALAYER = Path(sys.executable).with_name("metalayer")
RUN_DATE = date(2026, 11, 20)
MISSING_DATE = date(2026, 11, 25)  # no extract in the landing dir: the run fails

needs_prometheus = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("prometheus", "promtool", "prometheus-pushgateway")),
    reason="Debian packages prometheus and prometheus-pushgateway (make system-deps)",
)


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - localhost test services
        return response.read()


def wait_for(what: str, check: Callable[[], object], timeout: float = 45.0, interval: float = 0.25):
    """Poll until check() returns something truthy without raising; its last error explains a timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (AssertionError, OSError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(interval)
    if isinstance(last, AssertionError):
        raise last
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@dataclass
class Stack:
    url: str
    prometheus: str
    pushgateway: str
    luigid: str
    exporter: str
    env: dict[str, str]
    tmp: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def query(self, expr: str) -> dict[frozenset, float]:
        """An instant query: {frozenset of (label, value) without the name, job and instance: value}."""
        body = json.loads(http_get(f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        result = {}
        for sample in body["data"]["result"]:
            labels = {k: v for k, v in sample["metric"].items() if k not in ("__name__", "job", "instance")}
            result[frozenset(labels.items())] = float(sample["value"][1])
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, f"{expr}: {result}"
        return next(iter(result.values()))

    def api(self, path: str) -> dict:
        body = json.loads(http_get(f"{self.prometheus}/api/v1/{path}"))
        assert body["status"] == "success", body
        return body["data"]

    def sql(self, text: str, params: tuple | None = None) -> list[tuple]:
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else []

    def run(self, run_date: date, landing: Path) -> subprocess.CompletedProcess:
        """What the scheduler's cron line runs (pipeline/operations/maintenance.py cron_entry), through luigid."""
        return subprocess.run(
            [
                str(METALAYER),
                "run",
                "--trigger",
                "cron",
                "--date",
                run_date.isoformat(),
                "--landing",
                str(landing),
                "--scheduler-url",
                self.luigid,
            ],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )


def series_equal(stack: Stack, expr: str, expected: dict[frozenset, float]) -> bool:
    actual = stack.query(expr)
    differ = {
        tuple(sorted(key)): (actual.get(key), expected.get(key))
        for key in actual.keys() | expected.keys()
        if actual.get(key) != expected.get(key)
    }
    assert not differ, f"{expr}: (Prometheus, database) differ: {differ}"
    return True


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


def render_prometheus_config(tmp: Path, ports: dict[str, int]) -> Path:
    """monitoring/prometheus.yml with each compose service moved to its localhost port, scraped every second."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            rendered = []
            for target in group["targets"]:
                service = "prometheus" if target.startswith("localhost:") else target.split(":")[0]
                rendered.append(f"127.0.0.1:{ports[service]}")
            group["targets"] = rendered
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def render_luigi_overrides(tmp: Path, compose: dict, ports: dict[str, int]) -> Path:
    """The compose stack's luigi.cfg overrides with service URLs on localhost, after the test settings."""
    content = compose["configs"]["luigi-compose"]["content"]
    for service, port in ports.items():
        content = re.sub(rf"//{service}:\d+", f"//127.0.0.1:{port}", content)
    merged = configparser.ConfigParser(interpolation=None)
    if os.environ.get("LUIGI_CONFIG_PATH"):  # the suite's short waits (tests/luigi.test.cfg)
        merged.read(os.environ["LUIGI_CONFIG_PATH"])
    merged.read_string(content)
    path = tmp / "luigi.compose.cfg"
    with path.open("w") as handle:
        merged.write(handle)
    return path


def native_command(compose: dict, service: str, port: int, paths: dict[str, str]) -> list[str]:
    """The service's compose command, run here: the Debian binary or the venv's metalayer, a localhost port,
    container paths swapped for local ones."""
    command = [interpolate(arg) for arg in compose["services"][service]["command"]]
    if command[0] == "metalayer":
        command[0] = str(METALAYER)
        command[command.index("--port") + 1] = str(port)
        return [*command, "--address", "127.0.0.1"]
    binary = {"prometheus": "prometheus", "pushgateway": "prometheus-pushgateway"}[service]
    rendered = []
    for arg in command:
        flag, _, value = arg.partition("=")
        if flag == "--web.listen-address":
            continue
        rendered.append(f"{flag}={paths.get(value, value)}" if value else arg)
    return [binary, *rendered, f"--web.listen-address=127.0.0.1:{port}"]


def targets_up(stack: Stack) -> bool:
    targets = stack.api("targets")["activeTargets"]
    down = {target["labels"]["job"]: target["lastError"] for target in targets if target["health"] != "up"}
    assert not down, f"targets not up: {down}"
    return len(targets) == 4


@pytest.fixture(scope="module")
def stack(server_url, seed_landing, tmp_path_factory):
    compose = load_compose()
    tmp = tmp_path_factory.mktemp("stack")
    name = f"test_obs_{uuid.uuid4().hex[:12]}"
    url = db.create_database(name, server_url)
    db.bootstrap(url)
    ports = {service: free_port() for service in ("luigid", "exporter", "pushgateway", "prometheus")}
    overrides = render_luigi_overrides(tmp, compose, ports)
    app_env = {
        key: interpolate(value, {"POSTGRES_PASSWORD": "-", "TZ": "UTC"})
        for key, value in compose["x-app"]["environment"].items()
    }
    env = {
        **os.environ,
        **app_env,
        "DATABASE_URL": url,
        "METALAYER_HOME": str(tmp / "home"),
        "METALAYER_LANDING_DIR": str(seed_landing),
        "LUIGI_CONFIG_PATH": str(overrides),
    }
    (tmp / "home").mkdir()
    paths = {
        "/etc/prometheus/prometheus.yml": str(render_prometheus_config(tmp, ports)),
        "/prometheus": str(tmp / "tsdb"),
    }
    stack = Stack(url=url, env=env, tmp=tmp, **{service: f"http://127.0.0.1:{port}" for service, port in ports.items()})
    try:
        for service in ("pushgateway", "luigid", "exporter", "prometheus"):
            log = (tmp / f"{service}.log").open("w")
            stack.processes[service] = subprocess.Popen(  # noqa: S603 - argv from docker-compose.yml
                native_command(compose, service, ports[service], paths),
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for("Prometheus ready", lambda: http_get(f"{stack.prometheus}/-/ready"))
        wait_for("every target up", lambda: targets_up(stack))
        yield stack
    finally:
        for process in reversed(stack.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        db.drop_database(name, server_url)


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


PROMQL_WORDS = {
    "sum",
    "by",
    "max",
    "min",
    "increase",
    "rate",
    "sort_desc",
    "time",
    "on",
    "group_left",
    "ignoring",
    "and",
    "or",
    "absent",
    "count",
    "avg",
    "without",
    "unless",
    "bool",
}


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    grouped = set(re.findall(r"(?:by|on|without|ignoring)\s*\(([^)]*)\)", without_labels))
    grouping = {label.strip() for group in grouped for label in group.split(",")}
    return words - PROMQL_WORDS - grouping


@needs_prometheus
def test_prometheus_scrapes_the_exporter_pushgateway_and_luigid_and_the_series_equal_the_database(stack, seed_landing):
    result = stack.run(RUN_DATE, seed_landing)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ((run_id, started, finished),) = stack.sql(
        "select run_id, extract(epoch from started_at)::float8, extract(epoch from finished_at)::float8 "
        "from meta.pipeline_runs"
    )
    # A scrape during the run may be served from the exporter's cache for a few seconds: wait for a read
    # made after the run ended (every series of a scrape comes from one read).
    wait_for(
        "a read after the run",
        lambda: (
            stack.value("metalayer_pipeline_last_run_duration_seconds") == pytest.approx(finished - started, abs=1e-3)
        ),
    )

    # Rows per table: counted here table by table, from the catalog.
    tables = stack.sql(
        "select schemaname, tablename from pg_catalog.pg_tables where schemaname in ('bronze', 'silver', 'gold')"
    )
    expected_rows = {}
    for schema, table in tables:
        ((count,),) = stack.sql(f'select count(*) from "{schema}"."{table}"')  # noqa: S608 - catalog names
        expected_rows[labels(layer=schema, table=f"{schema}.{table}")] = float(count)
    assert len(expected_rows) >= 20 and expected_rows[labels(layer="gold", table="gold.fact_sales")] > 9000
    wait_for("table rows", lambda: series_equal(stack, "metalayer_table_rows", expected_rows))

    # Quarantine by stage, table and rule: a pandas group-by of the quarantine's rows.
    quarantine = pd.DataFrame(
        stack.sql("select stage, source_table, rule_name from silver.quarantine"), columns=["stage", "table", "rule"]
    )
    grouped = quarantine.groupby(["stage", "table", "rule"]).size()
    expected_quarantine = {labels(stage=s, table=t, rule=r): float(n) for (s, t, r), n in grouped.items()}
    assert len(expected_quarantine) > 5
    assert stack.query("metalayer_quarantine_rows") == expected_quarantine
    assert stack.value("sum(metalayer_quarantine_rows)") == len(quarantine)

    # Quality scores of the run, and the threshold of luigi.cfg.
    scores = stack.sql(
        "select table_name, dimension, score::float8 from meta.quality_scores where run_id = %s", (run_id,)
    )
    assert stack.query("metalayer_quality_score") == {labels(table=t, dimension=d): s for t, d, s in scores if t != "*"}
    run_score = next(s for t, d, s in scores if (t, d) == ("*", "overall"))
    assert stack.value("metalayer_quality_run_score") == run_score
    assert stack.value("metalayer_quality_threshold") == 0.95

    # The run: one-hot status, start, duration, last success; counts by trigger and status.
    assert stack.query("metalayer_pipeline_last_run_status") == {
        labels(status="success"): 1.0,
        labels(status="failed"): 0.0,
        labels(status="running"): 0.0,
    }
    assert stack.value("metalayer_pipeline_last_run_start_timestamp_seconds") == pytest.approx(started, abs=1e-3)
    assert stack.value("metalayer_pipeline_last_run_duration_seconds") == pytest.approx(finished - started, abs=1e-3)
    assert stack.value("metalayer_pipeline_last_success_timestamp_seconds") == pytest.approx(finished, abs=1e-3)
    assert stack.value('metalayer_pipeline_runs_total{trigger="cron", status="success"}') == 1
    assert stack.value("sum(metalayer_pipeline_runs_total)") == 1

    # Tasks: the newest run of each family, its duration and rows.
    tasks = stack.sql(
        "select task_family, extract(epoch from finished_at - started_at)::float8, rows_out::float8 "
        "from meta.task_runs where run_id = %s",
        (run_id,),
    )
    assert len(tasks) >= 18
    durations = stack.query("metalayer_task_last_run_duration_seconds")
    rows_out = stack.query('metalayer_task_last_run_rows{kind="out"}')
    for family, seconds, out in tasks:
        assert durations[labels(task_family=family)] == pytest.approx(seconds, abs=1e-3), family
        assert rows_out[labels(task_family=family, kind="out")] == out, family
    assert stack.value('count(metalayer_task_last_run_status{status="success"} == 1)') == len(tasks)

    # Extracts: loaded for 2026-11-20, i.e. midnight UTC of that day.
    midnight = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    sources = {labels(source=s): midnight for s in ("crm_customers", "erp_products", "erp_sales")}
    assert stack.query("metalayer_source_latest_extract_timestamp_seconds") == sources
    for age in stack.query("metalayer_source_latest_extract_age_seconds").values():
        assert age == pytest.approx(time.time() - midnight, abs=120)

    # The run pushed its batch metrics (job metalayer, grouped by trigger) through the Pushgateway.
    push = '{job="metalayer", trigger="cron"}'
    wait_for("pushed run", lambda: stack.query(f"metalayer_run_duration_seconds{push}"))
    assert stack.value(f"metalayer_run_duration_seconds{push}") == pytest.approx(finished - started, abs=1e-3)
    assert stack.value('metalayer_run_status{job="metalayer", status="success"}') == 1
    assert stack.value(f"metalayer_run_last_success_timestamp_seconds{push}") == pytest.approx(finished, abs=1e-3)
    assert stack.value(f"metalayer_run_quality_score{push}") == run_score
    ((loaded,),) = stack.sql("select sum(rows_loaded)::float8 from meta.ingested_files where source_name = 'erp_sales'")
    assert stack.value('metalayer_run_task_rows{job="metalayer", task_family="ErpSalesRaw", kind="out"}') == loaded
    assert stack.value(f"sum(metalayer_run_quarantined_rows{push})") == len(quarantine)

    # luigid's own metrics: it scheduled the run's tasks.
    wait_for("luigid metrics", lambda: stack.query("sum(luigi_task_done_total)"))
    assert stack.value("sum(luigi_task_done_total)") >= len(tasks)


@needs_prometheus
def test_alert_rules_load_and_a_failed_run_and_an_sla_miss_fire(stack):
    rules = [rule for group in stack.api("rules")["groups"] for rule in group["rules"]]
    declared = [
        rule["alert"]
        for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    assert sorted(rule["name"] for rule in rules) == sorted(declared)
    assert {rule["health"] for rule in rules} == {"ok"}

    result = stack.run(MISSING_DATE, stack.tmp / "empty-landing")
    assert result.returncode != 0
    wait_for(
        "failed status",
        lambda: stack.query('metalayer_pipeline_last_run_status{status="failed"}') == {labels(status="failed"): 1.0},
    )

    def firing() -> dict[str, list[dict]]:
        alerts: dict[str, list[dict]] = {}
        for alert in stack.api("alerts")["alerts"]:
            if alert["state"] == "firing":
                alerts.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return alerts

    wait_for("MetaLayerRunFailed firing", lambda: "MetaLayerRunFailed" in firing())
    assert stack.value('metalayer_pipeline_runs_total{trigger="cron", status="failed"}') == 1

    # The failed run replaced the pushed status, and left the last success's timestamp as it was.
    ((success_finished,),) = stack.sql(
        "select extract(epoch from finished_at)::float8 from meta.pipeline_runs where status = 'success'"
    )
    push = '{job="metalayer", trigger="cron"}'
    wait_for(
        "pushed failure",
        lambda: (
            stack.query('metalayer_run_status{job="metalayer", status="failed"}')
            == {labels(status="failed", trigger="cron"): 1.0}
        ),
    )
    assert stack.value(f"metalayer_run_last_success_timestamp_seconds{push}") == pytest.approx(
        success_finished, abs=1e-3
    )

    # An SLA miss as pipeline/operations/sla.py records it.
    stack.sql(
        "insert into meta.sla_misses (run_id, run_date, layer, message) values ('r', %s, 'gold', 'late')",
        (MISSING_DATE,),
    )
    wait_for("MetaLayerSlaMissed firing", lambda: firing().get("MetaLayerSlaMissed"))
    assert firing()["MetaLayerSlaMissed"][0]["layer"] == "gold"
    assert stack.value("metalayer_sla_misses_total") == 1
    assert "MetaLayerQualityBelowThreshold" not in firing()


@needs_prometheus
def test_every_dashboard_query_is_valid_promql_naming_metrics_prometheus_has(stack):
    known = set(stack.api("label/__name__/values"))
    assert {"metalayer_table_rows", "metalayer_run_duration_seconds", "luigi_task_done_total"} <= known
    queries = dashboard_queries()
    assert len(queries) >= 15
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: {expr} names no metric"
        assert names <= known, f"{title}: {sorted(names - known)} not in Prometheus"
        stack.query(expr)  # raises unless Prometheus accepts the expression


@needs_prometheus
def test_the_exporter_stops_cleanly_on_sigterm(stack):
    process = stack.processes["exporter"]
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=15) == 0


@needs_prometheus
def test_promtool_accepts_the_config_and_rules_and_the_rule_unit_tests_pass():
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ):
        result = subprocess.run(["promtool", *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


def test_the_dashboard_is_valid_and_uses_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert dashboard["uid"] and dashboard["title"] == "MetaLayer"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Last run",
        "Duration per task (newest run)",
        "Rows per layer",
        "Run quality score",
        "Quarantine by rule",
    ):
        assert wanted in titles
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert "$" not in target["expr"], "no Grafana variables: the test runs the queries as they are"


def test_metric_names_follow_prometheus_conventions(warehouse, query, seed_landing):
    from prometheus_client.core import CounterMetricFamily

    from pipeline.operations.metrics import run_metrics, warehouse_metrics
    from pipeline.operations.runner import run_pipeline

    result = run_pipeline(RUN_DATE, landing=seed_landing, trigger="test")
    assert result.success, result.luigi_summary
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        families = warehouse_metrics(cur)
        trigger, pushed = run_metrics(cur, result.run_id)
        assert run_metrics(cur, "no-such-run") is None
    assert trigger == "test"
    names = [family.name for family in families + pushed]
    assert len(names) == len(set(names)), "a family is defined twice"
    for family in families + pushed:
        assert family.name.startswith("metalayer_"), family.name
        assert family.documentation
        if isinstance(family, CounterMetricFamily):
            assert all(sample.name.endswith("_total") for sample in family.samples), family.name
        else:
            assert not family.name.endswith("_total"), family.name
        if "timestamp" in family.name or "duration" in family.name or "age" in family.name:
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            assert not {"run_id", "date", "run_date"} & set(sample.labels), family.name
        assert len(family.samples) < 200, f"{family.name}: {len(family.samples)} series"
    # One run of three sources.
    by_name = {family.name: family for family in families}
    sources = {
        sample.labels["source"] for sample in by_name["metalayer_source_latest_extract_timestamp_seconds"].samples
    }
    assert sources == {"crm_customers", "erp_products", "erp_sales"}
    runs = {(s.labels["trigger"], s.labels["status"]): s.value for s in by_name["metalayer_pipeline_runs"].samples}
    assert runs[("test", "success")] == 1 and sum(runs.values()) == 1
    ((rows,),) = query("select count(*) from silver.customers")
    table_rows = {s.labels["table"]: s.value for s in by_name["metalayer_table_rows"].samples}
    assert table_rows["silver.customers"] == rows


def test_an_unreadable_warehouse_is_metalayer_up_0_not_a_failed_scrape(server_url):
    from prometheus_client import generate_latest

    from pipeline.operations.exporter import WarehouseCollector

    missing = db.url_with_database(server_url, f"missing_{uuid.uuid4().hex[:8]}")
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(WarehouseCollector(missing, cache_seconds=0))
    text = generate_latest(registry).decode()
    assert re.search(r"^metalayer_up 0\.0$", text, re.M)
    assert "metalayer_table_rows" not in text


def test_push_is_false_without_a_gateway_for_an_unknown_run_and_when_the_gateway_is_down(
    warehouse, luigi_setting, caplog
):
    from pipeline.core.runs import start_run
    from pipeline.operations.metrics import push_run_metrics

    run_id = start_run(warehouse, RUN_DATE, "test")
    assert push_run_metrics(warehouse, run_id) is False  # luigi.cfg sets no pushgateway_url
    closed = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="pipeline.operations.metrics"):
        assert push_run_metrics(warehouse, "no-such-run", gateway=closed) is False
        luigi_setting("metrics", "pushgateway_url", closed)
        assert push_run_metrics(warehouse, run_id) is False
    assert "no run no-such-run" in caplog.text
    assert f"not pushed to {closed}" in caplog.text
