"""luigi.cfg sections read through luigi.Config classes (one per section)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi

from pipeline.core.db import REPO_ROOT


class metalayer(luigi.Config):  # noqa: N801 - luigi maps the class name to the [metalayer] section
    landing_dir = luigi.Parameter(default="data/landing", description="Landing dir; METALAYER_LANDING_DIR wins.")
    sources_file = luigi.Parameter(
        default="sources.toml", description="how each source's files are written; METALAYER_SOURCES_FILE wins"
    )


class watch(luigi.Config):  # noqa: N801
    quiet_seconds = luigi.FloatParameter(
        default=30.0, description="`metalayer watch`: a folder without _SUCCESS runs once unchanged this long"
    )
    poll_seconds = luigi.FloatParameter(default=5.0, description="`metalayer watch` looks this often")
    ready_quiet_seconds = luigi.FloatParameter(
        default=0.0, description="> 0: plain luigi runs wait (LandingReady) for a folder unchanged this long"
    )


class tuning(luigi.Config):  # noqa: N801
    """Memory and cache knobs; the defaults are measured on 1M sales lines and 2 cores (docs/benchmarks.md)."""

    silver_work_mem = luigi.Parameter(default="256MB", description="work_mem of a silver task's transaction")
    silver_temp_buffers = luigi.Parameter(
        default="1GB", description="temp_buffers of a silver task (its staged extract lives in temp tables)"
    )
    gold_work_mem = luigi.Parameter(default="256MB", description="work_mem of the gold tasks that group a fact")
    clv_temp_buffers = luigi.Parameter(default="256MB", description="temp_buffers of CustomerClv (two temp tables)")
    analyze_full_share = luigi.FloatParameter(
        default=0.1,
        description="a load changing more than this share of a bronze or silver table re-analyzes all its "
        "columns; a smaller one only the load's columns (load id, line number, extract date)",
    )
    console_cache_seconds = luigi.FloatParameter(
        default=300.0, description="console: a query result is reused this long while the data version is the same"
    )
    console_version_seconds = luigi.FloatParameter(
        default=5.0, description="console: the data version (changes when a task starts or ends) is read this often"
    )


class bronze(luigi.Config):  # noqa: N801
    max_record_lines = luigi.IntParameter(default=100)
    copy_buffer_bytes = luigi.IntParameter(default=1024 * 1024)
    profile_columns = luigi.BoolParameter(default=True)
    profile_sample_rows = luigi.IntParameter(default=100_000)


class silver(luigi.Config):  # noqa: N801
    default_calling_code = luigi.Parameter(default="1", description="E.164 country code for numbers without one")
    national_number_digits = luigi.IntParameter(default=10)
    order_size_small_max = luigi.FloatParameter(default=50.0)
    order_size_medium_max = luigi.FloatParameter(default=250.0)


class quality(luigi.Config):  # noqa: N801
    rules_file = luigi.Parameter(default="sql/quality_rules.toml")
    threshold = luigi.FloatParameter(default=0.95)
    on_breach = luigi.ChoiceParameter(choices=["fail", "warn"], default="fail")
    max_quarantined_share = luigi.FloatParameter(
        default=0.05,
        description="a silver table losing more of a date's input lines to quarantine breaches the "
        "gate, whatever the run score",
    )


class clv(luigi.Config):  # noqa: N801
    time_unit = luigi.ChoiceParameter(choices=["days", "weeks"], default="weeks")
    horizon_days = luigi.IntParameter(default=365, description="how far predicted CLV looks ahead")
    discount_period_days = luigi.IntParameter(default=30, description="cash flows are discounted per period")
    annual_discount_rate = luigi.FloatParameter(default=0.10)
    penalizer = luigi.OptionalFloatParameter(
        default=None,
        description="unset: plain maximum likelihood, fallback_penalizer only when it fails; "
        "0: never a penalty; > 0: always this one (on the total -log-likelihood, pipeline/clv/models.py)",
    )
    fallback_penalizer = luigi.FloatParameter(
        default=0.5, description="lambda of the refit when plain maximum likelihood fails; 0: no refit"
    )


class postgres(luigi.Config):  # noqa: N801
    marker_table = luigi.Parameter(default="meta.table_updates")


def resolve_path(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def landing_dir() -> Path:
    return resolve_path(os.environ.get("METALAYER_LANDING_DIR") or metalayer().landing_dir)


class operations(luigi.Config):  # noqa: N801
    transient_retries = luigi.IntParameter(
        default=3, description="attempts after the first when a task hits a transient database error"
    )
    transient_backoff_seconds = luigi.FloatParameter(default=2.0, description="first wait; doubles each attempt")
    retention_days = luigi.IntParameter(default=90, description="`metalayer purge` keeps this many days")
    cron = luigi.Parameter(default="0 2 * * *", description="`metalayer schedule` default schedule")
    statement_timeout_seconds = luigi.FloatParameter(
        default=7200.0, description="a task's statement running longer is cancelled; 0 = no limit"
    )
    lock_timeout_seconds = luigi.FloatParameter(
        default=1800.0, description="a task waiting longer for a lock fails (transient: retried); 0 = no limit"
    )


class sla(luigi.Config):  # noqa: N801
    bronze_minutes = luigi.FloatParameter(default=60.0, description="bronze done within this long of run start")
    silver_minutes = luigi.FloatParameter(default=120.0)
    gold_minutes = luigi.FloatParameter(default=180.0)
    run_minutes = luigi.FloatParameter(default=240.0, description="the whole run")
    check_interval_seconds = luigi.FloatParameter(default=30.0, description="how often a running run is checked")


class alerts(luigi.Config):  # noqa: N801
    email = luigi.BoolParameter(default=False, description="mail alerts through Luigi's [email] and [smtp] settings")
    webhook_url = luigi.Parameter(default="", description="POST each alert as JSON here (empty: off)")
    webhook_timeout_seconds = luigi.FloatParameter(default=10.0)
    console_url = luigi.Parameter(default="", description="where to look, put into alert messages")


class metrics(luigi.Config):  # noqa: N801
    pushgateway_url = luigi.Parameter(default="", description="push each run's metrics here; empty: no push")
    push_timeout_seconds = luigi.FloatParameter(default=5.0)
    exporter_cache_seconds = luigi.FloatParameter(
        default=5.0, description="scrapes within this many seconds of a read share it"
    )
    exporter_statement_timeout_seconds = luigi.FloatParameter(default=10.0)


class anomalies(luigi.Config):  # noqa: N801
    history_days = luigi.IntParameter(
        default=56, description="a metric is compared with its last this many extract dates (8 weeks)"
    )
    min_history = luigi.IntParameter(
        default=21, description="dates of history a metric needs before it is scored (3 of each weekday)"
    )
    threshold = luigi.FloatParameter(default=6.0, description="|robust z-score| from which a metric is an anomaly")
    min_relative_scale = luigi.FloatParameter(
        default=0.02,
        description="smallest scale of ln(1 + value): a steady count or amount moving by less "
        "than threshold x this (about 12%) is never an anomaly",
    )
