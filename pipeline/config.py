"""luigi.cfg sections read through luigi.Config classes (one per section)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi

from pipeline.db import REPO_ROOT


class metalayer(luigi.Config):  # noqa: N801 - luigi maps the class name to the [metalayer] section
    landing_dir = luigi.Parameter(default="data/landing", description="Landing dir; METALAYER_LANDING_DIR wins.")


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


class clv(luigi.Config):  # noqa: N801
    time_unit = luigi.ChoiceParameter(choices=["days", "weeks"], default="weeks")
    horizon_days = luigi.IntParameter(default=365, description="how far predicted CLV looks ahead")
    discount_period_days = luigi.IntParameter(default=30, description="cash flows are discounted per period")
    annual_discount_rate = luigi.FloatParameter(default=0.10)
    penalizer = luigi.FloatParameter(default=0.001, description="L2 on log-parameters; 0 = plain likelihood")


class postgres(luigi.Config):  # noqa: N801
    marker_table = luigi.Parameter(default="meta.table_updates")


def resolve_path(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def landing_dir() -> Path:
    return resolve_path(os.environ.get("METALAYER_LANDING_DIR") or metalayer().landing_dir)
