"""Anomaly detection: every date's source and gold metrics scored against their own history.

Per source (volume; null rate and distinct count per column, from the profiles
bronze writes for every load) and from gold (revenue per region, average unit
price), a robust z-score against a weekday-adjusted baseline of the last
``[anomalies] history_days`` extract dates; the method is in
sql/anomalies/anomalies.sql, the scores in meta.anomalies. A flagged metric does
not fail the run: it is shown in the console, exported to Prometheus and alerted.
"""

from __future__ import annotations

from luigi.util import requires

from pipeline.base import TaskStats, WarehouseTask
from pipeline.core import db
from pipeline.core.config import anomalies as anomalies_config
from pipeline.tasks_gold import FactSales


# The date's fact stands on every earlier date's, and on the date's bronze loads.
@requires(FactSales)
class Anomalies(WarehouseTask):
    """meta.anomalies for one extract date; needs that date's bronze profiles and gold sales."""

    layer = "anomalies"
    table = "meta.anomalies"
    model = "sql/anomalies/anomalies.sql"

    def sql_params(self) -> dict:
        config = anomalies_config()
        return {
            **super().sql_params(),
            "history_days": config.history_days,
            "min_history": config.min_history,
            "threshold": config.threshold,
            "min_relative_scale": config.min_relative_scale,
        }

    def execute(self, conn) -> TaskStats:
        with conn.cursor() as cur:
            cur.execute(db.sql_text("anomalies/anomalies.sql"), self.sql_params())
            scored = max(cur.rowcount, 0)
            cur.execute(db.sql_text("anomalies/flagged.sql"), self.sql_params())
            flagged = [row[0] for row in cur.fetchall()]
        message = (
            f"{len(flagged)} anomalies: " + ", ".join(flagged[:5]) + (", ..." if len(flagged) > 5 else "")
            if flagged
            else "no anomalies"
        )
        return TaskStats(rows_in=scored, rows_out=scored, message=f"{scored} metrics scored; {message}")
