"""Gold: the star schema, built from silver by set-based SQL (one file per table under sql/gold/).

Every gold task of a date requires the date's quality gate: gold is built only
from silver that passed it. The facts, aggregates, CLV and cohorts come next.
"""

from __future__ import annotations

import luigi

from pipeline.base import WarehouseTask
from pipeline.tasks_silver import SilverQualityGate


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
    table = "gold.fact_sales"
    sql_files = ("gold/fact_sales.sql",)

    def requires(self):
        common = {"date": self.date, "run_id": self.run_id, "landing_dir": self.landing_dir}
        return [DimDate(**common), DimProduct(**common), DimCustomer(**common)]


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


class CohortRetention(FactAggregate):
    table = "gold.cohort_retention"
    sql_files = ("gold/cohort_retention.sql",)


GOLD_TASKS: tuple[type[GoldTask], ...] = (DimDate, DimProduct, DimCustomer, FactSales, AggDailySales,
                                          AggMonthlySales, CustomerAnalytics, ProductAnalytics, CohortRetention)
