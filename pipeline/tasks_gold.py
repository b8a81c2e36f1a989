"""Gold: the star schema, built from silver by set-based SQL (one file per table under sql/gold/).

Every gold task of a date requires the date's quality gate: gold is built only
from silver that passed it. The facts, aggregates, CLV and cohorts come next.
"""

from __future__ import annotations

import io
import json
import logging

import luigi
import numpy as np
import pandas as pd

from pipeline import clv
from pipeline.base import TaskStats, WarehouseTask, sql_path
from pipeline.config import clv as clv_config
from pipeline.tasks_bronze import previous_extract_date
from pipeline.tasks_silver import SilverQualityGate

logger = logging.getLogger(__name__)


class GoldTask(WarehouseTask):
    landing_dir = luigi.Parameter(default="", significant=False)

    def requires(self):
        return SilverQualityGate(date=self.date, run_id=self.run_id, landing_dir=self.landing_dir)


class DimDate(GoldTask):
    table = "gold.dim_date"
    sql_files = ("gold/dim_date.sql",)


class DimProduct(GoldTask):
    table = "gold.dim_product"
    sql_files = ("gold/dim_product.sql",)


class DimCustomer(GoldTask):
    table = "gold.dim_customer"
    sql_files = ("gold/dim_customer.sql",)


class FactSales(GoldTask):
    """The fact of a date also needs the previous extract date's: whatever date runs first, gold
    ends as one run of every date in order would leave it (the CLV and KPIs of a date read every
    order up to it)."""

    table = "gold.fact_sales"
    sql_files = ("gold/fact_sales.sql",)

    def requires(self):
        common = {"run_id": self.run_id, "landing_dir": self.landing_dir}
        required = [DimDate(date=self.date, **common), DimProduct(date=self.date, **common),
                    DimCustomer(date=self.date, **common)]
        previous = previous_extract_date(self.landing_dir, self.date)
        if previous is not None:
            required.append(FactSales(date=previous, **common))
        return required


class FactAggregate(GoldTask):
    """A table recomputed from the fact as a whole."""

    def requires(self):
        return FactSales(date=self.date, run_id=self.run_id, landing_dir=self.landing_dir)


class AggDailySales(FactAggregate):
    table = "gold.agg_daily_sales"
    sql_files = ("gold/agg_daily_sales.sql",)


class AggMonthlySales(FactAggregate):
    table = "gold.agg_monthly_sales"
    sql_files = ("gold/agg_monthly_sales.sql",)


class CustomerAnalytics(FactAggregate):
    table = "gold.customer_analytics"
    sql_files = ("gold/customer_analytics.sql",)


class ProductAnalytics(FactAggregate):
    table = "gold.product_analytics"
    sql_files = ("gold/product_analytics.sql",)


class CustomerClv(FactAggregate):
    """Historical and predicted CLV as of the run date; the two model fits go to gold.clv_model.

    The per-customer summary is one SQL query (sql/gold/customer_rfm.sql); the
    BG/NBD and Gamma-Gamma fits run on its columns as numpy arrays
    (pipeline/clv.py), and the results go back with COPY.
    """

    table = "gold.customer_clv"

    def execute(self, conn) -> TaskStats:
        config = clv_config()
        unit_days = 7.0 if config.time_unit == "weeks" else 1.0
        with conn.cursor() as cur:
            cur.execute(sql_path("gold/customer_rfm.sql").read_text(), self.sql_params())
            rows = cur.fetchall()
            summary = pd.DataFrame(rows, columns=["customer_id", "frequency", "recency_days", "t_days",
                                                  "monetary_value", "historical_clv"])
            x = summary.frequency.to_numpy(dtype=float)
            t_x = summary.recency_days.to_numpy(dtype=float) / unit_days
            t = summary.t_days.to_numpy(dtype=float) / unit_days
            m = summary.monetary_value.to_numpy(dtype=float)
            bg = clv.fit_bgnbd(x, t_x, t, penalizer=config.penalizer)
            # Repeat days that were all free items carry no spend to learn from: Gamma-Gamma is
            # fit without them, and their expected spend and predicted CLV stay null.
            gg = clv.fit_gamma_gamma(np.where(m > 0, x, 0), m, penalizer=config.penalizer)
            horizon = config.horizon_days / unit_days
            period = config.discount_period_days / unit_days
            periods = max(1, round(config.horizon_days / config.discount_period_days))
            rate = (1 + config.annual_discount_rate) ** (config.discount_period_days / 365.0) - 1
            summary["recency"] = t_x
            summary["t"] = t
            summary["expected_purchases"] = clv.expected_purchases(bg, horizon, x, t_x, t)
            summary["p_alive"] = clv.p_alive(bg, x, t_x, t)
            summary["expected_avg_spend"] = clv.expected_average_spend(gg, x, m)
            summary["predicted_clv"] = clv.predicted_clv(bg, gg, x, t_x, t, m, periods, rate, time_unit=period)
            cur.execute("delete from gold.customer_clv where as_of_date = %s", (self.date,))
            cur.execute("delete from gold.clv_model where as_of_date = %s", (self.date,))
            columns = ["customer_id", "frequency", "recency", "t", "monetary_value", "historical_clv",
                       "expected_purchases", "p_alive", "expected_avg_spend", "predicted_clv"]
            out = summary[columns].assign(as_of_date=self.date.isoformat())
            buffer = io.StringIO()
            out.to_csv(buffer, index=False, header=False, na_rep="", float_format="%.6f")
            buffer.seek(0)
            cur.copy_expert(f"copy gold.customer_clv ({', '.join([*columns, 'as_of_date'])}) from stdin "
                            "with (format csv)", buffer)
            for name, fit in (("bg_nbd", bg), ("gamma_gamma", gg)):
                params = json.dumps(fit.params.as_dict()) if fit.params is not None else None
                cur.execute("""insert into gold.clv_model (model, time_unit, params, log_likelihood, n_customers,
                                                           message, as_of_date)
                               values (%s, %s, %s, %s, %s, %s, %s)""",
                            (name, config.time_unit, params, fit.log_likelihood if fit.params else None,
                             int(fit.n_customers), fit.message, self.date))
        warnings = [fit.message for fit in (bg, gg) if fit.params is None]
        if warnings:
            logger.warning("CLV for %s: no predictions: %s", self.date, "; ".join(warnings))
        return TaskStats(rows_in=len(summary), rows_out=len(summary),
                         message=("; ".join(f"WARNING: {w}" for w in warnings) or None))


class BusinessKpis(GoldTask):
    table = "gold.business_kpis"
    sql_files = ("gold/business_kpis.sql",)

    def requires(self):
        return CustomerClv(date=self.date, run_id=self.run_id, landing_dir=self.landing_dir)


class CohortRetention(FactAggregate):
    table = "gold.cohort_retention"
    sql_files = ("gold/cohort_retention.sql",)


GOLD_TASKS: tuple[type[GoldTask], ...] = (DimDate, DimProduct, DimCustomer, FactSales, AggDailySales,
                                          AggMonthlySales, CustomerAnalytics, ProductAnalytics, CohortRetention,
                                          CustomerClv, BusinessKpis)
