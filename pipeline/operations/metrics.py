"""Prometheus metrics read from the meta tables.

Two consumers: the exporter (``pipeline/operations/exporter.py``) reads the warehouse's
state at every scrape, and a run pushes its own batch metrics to a Pushgateway
when it ends (luigi.cfg ``[metrics] pushgateway_url``). The SQL is in
``sql/metrics/``; both read it through the same builders, so a run's pushed
task metrics and the exporter's last-run metrics mean the same thing.

Names follow Prometheus's conventions: prefix ``metalayer_``, base units
(``_seconds``; points in time are Unix ``_timestamp_seconds``), counters end in
``_total``, and labels have few values (status, trigger, task family, layer,
table, rule, dimension, source; never a run id or a date). A status is one-hot:
a series per possible status, 1 for the current one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from pipeline.core import db
from pipeline.core.runs import TRIGGERS

log = logging.getLogger(__name__)

PUSH_JOB = "metalayer"
PIPELINE_STATUSES = ("running", "success", "failed")
TASK_STATUSES = ("running", "success", "failed", "skipped")
FINISHED_PIPELINE_STATUSES = ("success", "failed")
FINISHED_TASK_STATUSES = ("success", "failed", "skipped")
ROW_KINDS = ("in", "out", "rejected", "duplicate")
RUN_TABLE = "*"  # meta.quality_scores' table_name for the score of a whole run


def read_rows(cur, name: str, run_id: str | None = None) -> list[dict]:
    """Run ``sql/metrics/<name>.sql`` (with ``run_id`` when it takes one) and return its rows as dicts."""
    text = db.sql_text(f"metrics/{name}.sql")
    cur.execute(text, {"run_id": run_id} if "%(run_id)s" in text else None)
    columns = [column.name for column in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _one_hot(family: GaugeMetricFamily, prefix: list[str], current: str, statuses: Iterable[str]) -> None:
    for status in statuses:
        family.add_metric([*prefix, status], 1.0 if status == current else 0.0)


def task_families(rows: list[dict], prefix: str, scope: str) -> list[Metric]:
    """Status, start, duration and row counts per task family, from task_last_runs.sql's rows."""
    status = _gauge(
        f"{prefix}_status",
        f"1 for the status of {scope} of the task family, 0 for the others",
        ["task_family", "status"],
    )
    start = _gauge(f"{prefix}_start_timestamp_seconds", f"When {scope} of the task family started", ["task_family"])
    duration = _gauge(
        f"{prefix}_duration_seconds",
        f"How long {scope} of the task family took (so far, while it runs)",
        ["task_family"],
    )
    rows_family = _gauge(
        f"{prefix}_rows",
        f"Rows {scope} of the task family read (in), wrote (out), rejected and found duplicate",
        ["task_family", "kind"],
    )
    for row in rows:
        family = row["task_family"]
        _one_hot(status, [family], row["status"], TASK_STATUSES)
        start.add_metric([family], row["started_seconds"])
        duration.add_metric([family], row["duration_seconds"])
        for kind in ROW_KINDS:
            value = row[f"rows_{kind}"]
            if value is not None:
                rows_family.add_metric([family, kind], value)
    return [status, start, duration, rows_family]


def quarantine_family(rows: list[dict], name: str, documentation: str) -> GaugeMetricFamily:
    family = _gauge(name, documentation, ["stage", "table", "rule"])
    for row in rows:
        family.add_metric([row["stage"], row["source_table"], row["rule_name"]], row["row_count"])
    return family


def quality_families(rows: list[dict], table_name: str, run_name: str, scope: str) -> list[Metric]:
    """Table scores per dimension and the run score, from quality_scores.sql's rows."""
    tables = _gauge(
        table_name,
        f"Quality score (0 to 1) of a silver table per DAMA dimension ('overall' is the weighted table score), {scope}",
        ["table", "dimension"],
    )
    run = _gauge(run_name, f"Quality score (0 to 1) of the whole run, {scope}")
    for row in rows:
        if row["table_name"] == RUN_TABLE:
            if row["dimension"] == "overall":
                run.add_metric([], row["score"])
        else:
            tables.add_metric([row["table_name"], row["dimension"]], row["score"])
    return [tables, run]


def count_layer_rows(cur) -> list[tuple[str, str, float]]:
    """(schema, table, exact row count) of every base table of the layers, counted in one statement."""
    from psycopg2 import sql

    tables = [(row["table_schema"], row["table_name"]) for row in read_rows(cur, "layer_tables")]
    if not tables:
        return []
    counts = sql.SQL(" union all ").join(
        sql.SQL("select {schema}, {table}, count(*)::float8 from {qualified}").format(
            schema=sql.Literal(schema), table=sql.Literal(table), qualified=sql.Identifier(schema, table)
        )
        for schema, table in tables
    )
    cur.execute(counts)
    return cur.fetchall()


def warehouse_metrics(cur) -> list[Metric]:
    """Everything the exporter serves about the warehouse, read in the cursor's transaction."""
    from pipeline.core.config import quality

    families: list[Metric] = []

    last = read_rows(cur, "pipeline_last_run")[0]
    status = _gauge(
        "metalayer_pipeline_last_run_status",
        "1 for the status of the newest pipeline run, 0 for the others",
        ["status"],
    )
    start = _gauge("metalayer_pipeline_last_run_start_timestamp_seconds", "When the newest pipeline run started")
    duration = _gauge(
        "metalayer_pipeline_last_run_duration_seconds", "How long the newest pipeline run took (so far, while it runs)"
    )
    success = _gauge(
        "metalayer_pipeline_last_success_timestamp_seconds", "When the newest successful pipeline run finished"
    )
    if last["status"] is not None:
        _one_hot(status, [], last["status"], PIPELINE_STATUSES)
        start.add_metric([], last["started_seconds"])
        duration.add_metric([], last["duration_seconds"])
    if last["last_success_seconds"] is not None:
        success.add_metric([], last["last_success_seconds"])
    families += [status, start, duration, success]

    counts = {(row["trigger"], row["status"]): row["runs"] for row in read_rows(cur, "pipeline_runs")}
    runs = CounterMetricFamily(
        "metalayer_pipeline_runs", "Finished pipeline runs by trigger and status", labels=["trigger", "status"]
    )
    for trigger in TRIGGERS:
        for finished in FINISHED_PIPELINE_STATUSES:
            runs.add_metric([trigger, finished], counts.get((trigger, finished), 0.0))
    running = _gauge("metalayer_pipeline_runs_running", "Pipeline runs in progress")
    running.add_metric([], sum(n for (_, run_status), n in counts.items() if run_status == "running"))
    families += [runs, running]

    families += task_families(read_rows(cur, "task_last_runs"), "metalayer_task_last_run", "the newest run")
    task_runs = CounterMetricFamily(
        "metalayer_task_runs", "Finished task runs by task family and status", labels=["task_family", "status"]
    )
    for row in read_rows(cur, "task_runs"):
        if row["status"] in FINISHED_TASK_STATUSES:
            task_runs.add_metric([row["task_family"], row["status"]], row["runs"])
    families.append(task_runs)

    table_rows = _gauge(
        "metalayer_table_rows", "Rows in each table of the bronze, silver and gold layers", ["layer", "table"]
    )
    for layer, table, count in count_layer_rows(cur):
        table_rows.add_metric([layer, f"{layer}.{table}"], count)
    families.append(table_rows)

    families.append(
        quarantine_family(
            read_rows(cur, "quarantine_rows"),
            "metalayer_quarantine_rows",
            "Rows in silver.quarantine by stage, source table and rule broken",
        )
    )

    families += quality_families(
        read_rows(cur, "quality_scores"), "metalayer_quality_score", "metalayer_quality_run_score", "as last computed"
    )
    threshold = _gauge(
        "metalayer_quality_threshold",
        "Run quality score below which the quality gate acts (luigi.cfg [quality] threshold)",
    )
    threshold.add_metric([], quality().threshold)
    families.append(threshold)

    sla = read_rows(cur, "sla_misses")
    misses = CounterMetricFamily("metalayer_sla_misses", "SLA misses recorded in meta.sla_misses")
    misses.add_metric([], sum(row["misses"] for row in sla))
    last_miss = _gauge(
        "metalayer_sla_last_miss_timestamp_seconds",
        "When the newest SLA miss of the layer (bronze, silver, gold; run: the whole run) was detected",
        ["layer"],
    )
    for row in sla:
        last_miss.add_metric([row["layer"]], row["last_detected_seconds"])
    families += [misses, last_miss]

    high_water = _gauge(
        "metalayer_source_high_watermark",
        "The high-water mark of a database source's latest "
        "extract: Unix seconds for a timestamp watermark, the value for a numeric one",
        ["source"],
    )
    lag = _gauge(
        "metalayer_source_watermark_lag_seconds",
        "How far a database source's latest extract was behind the source's clock when taken (timestamp watermarks)",
        ["source"],
    )
    extracted = _gauge(
        "metalayer_source_last_extract_timestamp_seconds",
        "When a database source's latest committed extract was taken (the source's clock)",
        ["source"],
    )
    for row in read_rows(cur, "source_watermarks"):
        high_water.add_metric([row["source_name"]], row["high_watermark"])
        if row["lag_seconds"] is not None:
            lag.add_metric([row["source_name"]], row["lag_seconds"])
        extracted.add_metric([row["source_name"]], row["extracted_seconds"])
    families += [high_water, lag, extracted]

    extract = _gauge(
        "metalayer_source_latest_extract_timestamp_seconds",
        "The newest extract date of the source loaded into bronze (midnight UTC)",
        ["source"],
    )
    age = _gauge(
        "metalayer_source_latest_extract_age_seconds",
        "Age of the newest extract of the source loaded into bronze (since its date's midnight UTC)",
        ["source"],
    )
    for row in read_rows(cur, "source_extracts"):
        extract.add_metric([row["source_name"]], row["extract_seconds"])
        age.add_metric([row["source_name"]], row["age_seconds"])
    families += [extract, age]
    families += anomaly_families(read_rows(cur, "anomalies"))
    return families


def anomaly_families(rows: list[dict]) -> list[Metric]:
    """Anomalies of the newest scored extract date per source and metric (meta.anomalies)."""
    count = _gauge(
        "metalayer_anomalies",
        "Metrics flagged as anomalies on the newest scored extract date, per "
        "source ('gold' for revenue and price) and metric",
        ["source", "metric"],
    )
    score = _gauge(
        "metalayer_anomaly_max_abs_score",
        "Largest |robust z-score| on the newest scored extract date, per source and metric",
        ["source", "metric"],
    )
    date = _gauge(
        "metalayer_anomalies_extract_date_timestamp_seconds",
        "The newest extract date with anomaly scores (midnight UTC)",
    )
    for row in rows:
        count.add_metric([row["source_name"], row["metric"]], row["anomalies"])
        score.add_metric([row["source_name"], row["metric"]], row["max_abs_score"])
    if rows:
        date.add_metric([], rows[0]["extract_seconds"])
    return [count, score, date]


def run_metrics(cur, run_id: str) -> tuple[str, list[Metric]] | None:
    """One run's batch metrics and its trigger, or None when the run is unknown."""
    found = read_rows(cur, "run", run_id)
    if not found:
        return None
    run = found[0]
    status = _gauge("metalayer_run_status", "1 for the status of the last pushed run, 0 for the others", ["status"])
    _one_hot(status, [], run["status"], PIPELINE_STATUSES)
    families: list[Metric] = [status]
    values = [
        (
            "metalayer_run_extract_date_timestamp_seconds",
            "Extract date of the last pushed run (midnight UTC)",
            run["run_date_seconds"],
        ),
        ("metalayer_run_start_timestamp_seconds", "When the last pushed run started", run["started_seconds"]),
        ("metalayer_run_finish_timestamp_seconds", "When the last pushed run finished", run["finished_seconds"]),
        ("metalayer_run_duration_seconds", "How long the last pushed run took", run["duration_seconds"]),
    ]
    if run["status"] == "success":
        # Pushed with POST (pushadd): a failed run leaves the previous success's timestamp in place.
        values.append(
            (
                "metalayer_run_last_success_timestamp_seconds",
                "When the last successful run finished",
                run["finished_seconds"],
            )
        )
    for name, documentation, value in values:
        if value is not None:
            family = _gauge(name, documentation)
            family.add_metric([], value)
            families.append(family)
    families += task_families(read_rows(cur, "task_last_runs", run_id), "metalayer_run_task", "the last pushed run")
    families.append(
        quarantine_family(
            read_rows(cur, "quarantine_rows", run_id),
            "metalayer_run_quarantined_rows",
            "Rows the last pushed run put in quarantine by stage, table and rule",
        )
    )
    families += quality_families(
        read_rows(cur, "quality_scores", run_id),
        "metalayer_run_table_quality_score",
        "metalayer_run_quality_score",
        "of the last pushed run",
    )
    return run["trigger"], families


class FixedCollector(Collector):
    """A collector that yields metric families computed beforehand."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def push_run_metrics(url: str, run_id: str, *, gateway: str | None = None) -> bool:
    """Push the run's batch metrics to the Pushgateway of luigi.cfg ``[metrics] pushgateway_url``.

    Job ``metalayer``, grouping key ``trigger``; POST semantics, so metric names
    the run does not send (the last success timestamp of a failed run) keep their
    previous values. Returns False when no gateway is configured, the run is
    unknown or the push fails; never raises: a failed push is a warning, not a
    failed run.
    """
    from prometheus_client import pushadd_to_gateway

    from pipeline.core.config import metrics as metrics_config

    config = metrics_config()
    gateway = gateway or config.pushgateway_url
    if not gateway:
        return False
    try:
        with db.transaction(url) as conn, conn.cursor() as cur:
            found = run_metrics(cur, run_id)
        if found is None:
            log.warning("metrics not pushed: no run %s in meta.pipeline_runs", run_id)
            return False
        trigger, families = found
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FixedCollector(families))
        pushadd_to_gateway(
            gateway,
            job=PUSH_JOB,
            registry=registry,
            grouping_key={"trigger": trigger},
            timeout=config.push_timeout_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - a push failure must never fail the run
        log.warning("metrics of run %s not pushed to %s: %s: %s", run_id, gateway, type(exc).__name__, exc)
        return False
    return True
