"""Gold: the star schema, built from silver by set-based SQL (one file per table under sql/gold/).

Every gold task of a date requires the date's quality gate: gold is built only
from silver that passed it. The facts, aggregates, CLV and cohorts come next.

The aggregates are kept incrementally. FactSales writes only the fact rows that
differ, as a batch: for every customer with a changed line, all their lines
before and after go to gold.fact_sales_delta (sign -1 / +1). An aggregate
catches up from its watermark by applying, per batch, its measures over the +1
lines minus the same over the -1 lines (sql/gold/steps/fact_delta.sql). Every
aggregate kept this way is a sum over customers (distinct customers too: a
customer counts 1 in a group or 0), so the result equals a recompute over the
whole fact, whatever order dates ran in. A table with no watermark, or behind a
full rebuild of the fact, is recomputed from the whole fact.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass

import luigi
import numpy as np
from luigi.util import requires
from psycopg2 import sql

from pipeline.base import PhaseClock, TaskStats, WarehouseTask
from pipeline.clv import models as clv
from pipeline.core import db
from pipeline.core.config import clv as clv_config
from pipeline.core.config import tuning
from pipeline.core.landing import previous_extract_date
from pipeline.tasks_silver import SilverQualityGate

logger = logging.getLogger(__name__)


def gold_step(name: str, **parts: sql.Composable) -> sql.Composed:
    """A script of sql/gold/steps/ with its {parts} filled (composed SQL only)."""
    return db.sql_statement(f"gold/steps/{name}.sql").format(**parts)


def run_script(cur, script: sql.Composed, params: dict | None = None) -> list[tuple[str, int]]:
    """Run a script statement by statement; returns (first line, rows affected) of each."""
    text = script.as_string(cur)
    results = []
    for statement in re.split(r";\s*\n", text):
        code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()
        if code:
            cur.execute(code, params)
            results.append((code.splitlines()[0], cur.rowcount))
    return results


def fact_model() -> sql.SQL:
    return db.sql_statement("gold/fact_sales.sql")


@requires(SilverQualityGate)
class GoldTask(WarehouseTask):
    """A gold table of the date; it needs the date's silver through the quality gate."""

    layer = "gold"


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

    def execute(self, conn) -> TaskStats:
        clock = PhaseClock()
        params = self.sql_params()
        with conn.cursor() as cur:
            # Room for the group-bys over a whole fact (hash aggregates of ~1M groups per million lines).
            cur.execute("select set_config('work_mem', %s, true)", (tuning().gold_work_mem,))  # set local
            # One writer at a time, and the incremental tables (share mode) wait for it to commit:
            # they must never miss a batch that an open transaction could still commit below a later one.
            cur.execute("lock table gold.fact_sales in share row exclusive mode")
            cur.execute(gold_step("fact_sales_prune"))
            cur.execute("select not exists (select 1 from gold.fact_sales)")
            first_load = cur.fetchone()[0]
            clock.lap("prepare")
            if first_load:
                counts = run_script(cur, gold_step("fact_sales_first_load", model=fact_model()), params)
                inserted = next(n for first, n in counts if first.startswith("insert into gold.fact_sales ("))
                clock.lap("load")
                return TaskStats(
                    rows_in=inserted,
                    rows_out=inserted,
                    phase_seconds=clock.laps,
                    message=f"first load: {inserted} fact rows",
                )
            cur.execute(gold_step("fact_sales_changes", model=fact_model()), params)
            cur.execute(
                "select count(*) filter (where had_before), count(*) filter (where not had_before) from changed_facts"
            )
            updated, inserted = cur.fetchone()
            clock.lap("compare")
            if updated + inserted:
                cur.execute(
                    "insert into gold.fact_sales_batches (changed_lines, delta_lines, is_full) "
                    "values (%s, 0, false) returning batch_id",
                    (updated + inserted,),
                )
                run_script(cur, gold_step("fact_sales_merge"), {"batch_id": cur.fetchone()[0]})
                clock.lap("merge")
        return TaskStats(
            rows_in=updated + inserted,
            rows_out=updated + inserted,
            phase_seconds=clock.laps,
            message=f"{inserted} new fact rows, {updated} changed",
        )

    def requires(self):
        required = [self.clone(DimDate), self.clone(DimProduct), self.clone(DimCustomer)]
        previous = previous_extract_date(self.landing_dir, self.date)
        if previous is not None:
            required.append(self.clone(date=previous))
        return required


@requires(FactSales)
class FactAggregate(GoldTask):
    """A table built from the fact."""


@dataclass
class FactCatchUp:
    consumer: str
    mode: str  # "full" (from the whole fact), "changes" (the batches after the watermark) or "none"
    latest: int  # the batch the consumer is at once this is applied
    lines: int = 0  # fact lines (full) or delta rows (changes) read
    batches: int = 0

    @property
    def full(self) -> bool:
        return self.mode == "full"

    def describe(self) -> str:
        if self.mode == "full":
            return f"recomputed from the whole fact ({self.lines} lines)"
        if self.mode == "changes":
            return f"caught up with the fact: {self.batches} batches, {self.lines} delta rows"
        return "no fact changes since the last run"


def catch_up_with_fact(cur, consumer: str, *, full: bool = False) -> FactCatchUp:
    """Lock the consumer table and the fact, and set up the view fact_lines (sql/gold/steps/fact_delta.sql).

    Full mode empties the consumer table and shows the whole fact as fact_lines.
    Call finish_catch_up in the same transaction once the table is up to date.
    """
    table = sql.Identifier(*consumer.split("."))
    # One catch-up per table at a time; then no fact writer may be in flight (see FactSales).
    cur.execute(sql.SQL("lock table {} in exclusive mode").format(table))
    cur.execute("lock table gold.fact_sales in share mode")
    cur.execute(
        """select (select batch_id from gold.fact_sales_watermarks where consumer = %s),
                          (select max(batch_id) from gold.fact_sales_batches),
                          (select max(batch_id) from gold.fact_sales_batches where is_full)""",
        (consumer,),
    )
    watermark, latest, full_batch = cur.fetchone()
    latest = latest if latest is not None else (watermark or 0)
    if not (full or watermark is None or (full_batch is not None and full_batch > watermark)):
        if latest <= watermark:
            return FactCatchUp(consumer, "none", watermark)
        cur.execute(
            """select count(*), coalesce(sum(delta_lines), 0),
                              (select greatest(reltuples, 0)::bigint from pg_class
                               where oid = 'gold.fact_sales'::regclass)
                       from gold.fact_sales_batches where batch_id > %s and batch_id <= %s""",
            (watermark, latest),
        )
        batches, delta_lines, fact_lines = cur.fetchone()
        # Past the size of the fact, one pass over all of it is cheaper than the batches.
        if delta_lines <= max(100_000, fact_lines):
            cur.execute(gold_step("fact_delta"), {"watermark": watermark, "latest": latest})
            return FactCatchUp(consumer, "changes", latest, delta_lines, batches)
    cur.execute(sql.SQL("truncate {}").format(table))
    cur.execute(gold_step("fact_full"))
    cur.execute("select greatest(reltuples, 0)::bigint from pg_class where oid = 'gold.fact_sales'::regclass")
    return FactCatchUp(consumer, "full", latest, cur.fetchone()[0])


def finish_catch_up(cur, catch_up: FactCatchUp) -> None:
    if catch_up.mode != "none":
        cur.execute("drop view fact_lines")
    cur.execute(
        """insert into gold.fact_sales_watermarks (consumer, batch_id) values (%s, %s)
                   on conflict (consumer) do update set batch_id = excluded.batch_id""",
        (catch_up.consumer, catch_up.latest),
    )


class IncrementalAggregate(FactAggregate):
    """A table kept from the fact incrementally; its SQL applies F(new_facts) - F(old_facts)."""

    full_refresh = luigi.BoolParameter(
        default=False, significant=False, description="recompute from the whole fact instead of catching up"
    )

    def execute(self, conn) -> TaskStats:
        clock = PhaseClock()
        with conn.cursor() as cur:
            # Room for the group-bys over a whole fact (hash aggregates of ~1M groups per million lines).
            cur.execute("select set_config('work_mem', %s, true)", (tuning().gold_work_mem,))  # set local
            catch_up = catch_up_with_fact(cur, self.table, full=self.full_refresh)
            clock.lap("changes")
            rows_out = 0
            if catch_up.mode != "none":
                for relative in self.sql_files:
                    cur.execute(db.sql_text(relative), {**self.sql_params(), "full": catch_up.full})
                # An aggregate is small: report the rows it holds now (a catch-up touches some of them).
                cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(*self.table.split("."))))
                rows_out = cur.fetchone()[0]
                clock.lap("apply")
            finish_catch_up(cur, catch_up)
        return TaskStats(
            rows_in=catch_up.lines, rows_out=rows_out, message=catch_up.describe(), phase_seconds=clock.laps
        )


PURCHASE_SUMMARY = "gold.customer_purchase_summary"


def purchase_summary_covers(cur, as_of) -> bool:
    """Bring gold.customer_purchase_summary up to the fact; True when no order line is dated after as_of."""
    catch_up = catch_up_with_fact(cur, PURCHASE_SUMMARY)
    if catch_up.mode != "none":
        cur.execute(db.sql_text("gold/customer_purchase_summary.sql"), {"full": catch_up.full})
    finish_catch_up(cur, catch_up)
    cur.execute("select coalesce(max(last_order_date) <= %s, true) from gold.customer_purchase_summary", (as_of,))
    return cur.fetchone()[0]


class AggDailySales(IncrementalAggregate):
    table = "gold.agg_daily_sales"
    sql_files = ("gold/agg_daily_sales.sql",)


class AggMonthlySales(IncrementalAggregate):
    table = "gold.agg_monthly_sales"
    sql_files = ("gold/agg_monthly_sales.sql",)


class CustomerAnalytics(IncrementalAggregate):
    table = "gold.customer_analytics"
    sql_files = ("gold/customer_analytics.sql",)


class ProductAnalytics(IncrementalAggregate):
    table = "gold.product_analytics"
    sql_files = ("gold/product_analytics.sql",)


class CustomerClv(FactAggregate):
    """Historical and predicted CLV as of the run date; the two model fits go to gold.clv_model.

    The per-customer summary is one SQL query (sql/gold/customer_rfm.sql), read
    from gold.customer_purchase_summary when no order line is dated after the
    run date (else from the fact); the BG/NBD and Gamma-Gamma fits run on its
    columns as numpy arrays (pipeline/clv/models.py), and the predictions go back with
    COPY to be joined to the summary (sql/gold/customer_clv.sql).
    """

    table = "gold.customer_clv"

    def execute(self, conn) -> TaskStats:
        config = clv_config()
        unit_days = 7.0 if config.time_unit == "weeks" else 1.0
        clock = PhaseClock()
        with conn.cursor() as cur:
            # Room for the two temp tables (a row per customer each); set before the first temp table.
            cur.execute(
                "select set_config('work_mem', %s, true), set_config('temp_buffers', %s, true)",  # set local
                (tuning().gold_work_mem, tuning().clv_temp_buffers),
            )
            from_summary = purchase_summary_covers(cur, self.date)
            rfm = db.sql_statement("gold/customer_rfm.sql")
            cur.execute(
                sql.SQL(
                    "create temp table clv_input on commit drop as "
                    "select row_number() over (order by customer_id) as ordinal, * from ({}) as rfm"
                ).format(rfm),
                {**self.sql_params(), "from_summary": from_summary},
            )
            clock.lap("summary")
            # Numbers travel as binary float8 both ways (no text per value); numeric -> float8 is
            # correctly rounded in PostgreSQL, as float() of a Decimal is in Python.
            summary = copy_out_float8(
                cur, sql.SQL("select frequency, recency_days, t_days, monetary_value from clv_input order by ordinal")
            )
            clock.lap("read")
            x = summary["frequency"]
            t_x = summary["recency_days"] / unit_days
            t = summary["t_days"] / unit_days
            m = summary["monetary_value"]
            # Plain maximum likelihood; a penalty only as configured or when the plain fit fails.
            penalty = {"penalizer": config.penalizer, "fallback_penalizer": config.fallback_penalizer}
            bg = clv.fit_bgnbd(x, t_x, t, **penalty)
            # Repeat days that were all free items carry no spend to learn from: Gamma-Gamma is
            # fit without them, and their expected spend and predicted CLV stay null.
            gg = clv.fit_gamma_gamma(np.where(m > 0, x, 0), m, **penalty)
            clock.lap("fit")
            horizon = config.horizon_days / unit_days
            period = config.discount_period_days / unit_days
            periods = max(1, round(config.horizon_days / config.discount_period_days))
            rate = (1 + config.annual_discount_rate) ** (config.discount_period_days / 365.0) - 1
            predictions = {
                "ordinal": np.arange(1, len(x) + 1, dtype=float),
                "recency": t_x,
                "t": t,
                "expected_purchases": clv.expected_purchases(bg, horizon, x, t_x, t),
                "p_alive": clv.p_alive(bg, x, t_x, t),
                "expected_avg_spend": clv.expected_average_spend(gg, x, m),
                "predicted_clv": clv.predicted_clv(bg, gg, x, t_x, t, m, periods, rate, time_unit=period),
            }
            cur.execute(
                "create temp table clv_predictions (ordinal float8 primary key, recency float8, t float8, "
                "expected_purchases float8, p_alive float8, expected_avg_spend float8, predicted_clv float8) "
                "on commit drop"
            )
            copy_in_float8(cur, "clv_predictions", predictions)
            cur.execute(db.sql_text("gold/customer_clv.sql"), self.sql_params())
            fits = (("bg_nbd", bg), ("gamma_gamma", gg))
            cur.execute(
                db.sql_text("gold/clv_model.sql"),
                {
                    **self.sql_params(),
                    "time_unit": config.time_unit,
                    "models": [name for name, _ in fits],
                    "params": [json.dumps(fit.params.as_dict()) if fit.params is not None else None for _, fit in fits],
                    "log_likelihoods": [fit.log_likelihood if fit.params else None for _, fit in fits],
                    "n_customers": [int(fit.n_customers) for _, fit in fits],
                    "penalizers": [fit.penalizer for _, fit in fits],
                    "penalizer_reasons": [fit.penalizer_reason for _, fit in fits],
                    "messages": [fit.message for _, fit in fits],
                },
            )
            clock.lap("write")
        warnings = [fit.message for fit in (bg, gg) if fit.params is None]
        if warnings:
            logger.warning("CLV for %s: no predictions: %s", self.date, "; ".join(warnings))
        return TaskStats(
            rows_in=len(x),
            rows_out=len(x),
            phase_seconds=clock.laps,
            message="; ".join([*(f"WARNING: {w}" for w in warnings), clv_penalty_summary(bg, gg)]),
        )


def clv_penalty_summary(bg: clv.FitResult, gg: clv.FitResult) -> str:
    """One line for the run summary: whether each CLV fit used a penalty, and why."""
    parts = []
    for label, fit in (("BG/NBD", bg), ("Gamma-Gamma", gg)):
        used = f"penalizer {fit.penalizer:g}" if fit.penalizer > 0 else "no penalty"
        parts.append(f"{label} {used} ({fit.penalizer_reason})")
    return "CLV fits: " + "; ".join(parts)


PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
PGCOPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def _float8_tuple(columns) -> np.dtype:
    """One row of COPY's binary format with only non-null float8 fields: count, then length and value each."""
    fields = [("count", ">i2")]
    for name in columns:
        fields += [(f"{name}_length", ">i4"), (name, ">f8")]
    return np.dtype(fields)


def copy_out_float8(cur, query: sql.Composable) -> dict[str, np.ndarray]:
    """The columns of a query (numbers, never null) as float arrays, through COPY's binary format."""
    cur.execute(sql.SQL("select * from ({}) as q limit 0").format(query))
    columns = [column.name for column in cur.description]
    buffer = io.BytesIO()
    casts = sql.SQL(", ").join(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in columns)
    cur.copy_expert(
        sql.SQL("copy (select {} from ({}) as q) to stdout with (format binary)").format(casts, query).as_string(cur),
        buffer,
    )
    data = buffer.getvalue()
    start = len(PGCOPY_HEADER) + int.from_bytes(data[15:19], "big")  # header extension length
    row = _float8_tuple(columns)
    rows = np.frombuffer(data, dtype=row, count=(len(data) - start - len(PGCOPY_TRAILER)) // row.itemsize, offset=start)
    if len(rows) and not (
        (rows["count"] == len(columns)).all() and all((rows[f"{c}_length"] == 8).all() for c in columns)
    ):
        raise ValueError(f"unexpected binary COPY layout (a null?) in: {query.as_string(cur)}")
    return {name: rows[name].astype(float) for name in columns}


def copy_in_float8(cur, table: str, arrays: dict[str, np.ndarray]) -> None:
    """COPY float arrays (NaN allowed) into a table's float8 columns, in binary format."""
    names = list(arrays)
    rows = np.empty(len(arrays[names[0]]), dtype=_float8_tuple(names))
    rows["count"] = len(names)
    for name in names:
        rows[f"{name}_length"] = 8
        rows[name] = arrays[name]
    stream = io.BytesIO(PGCOPY_HEADER + rows.tobytes() + PGCOPY_TRAILER)
    cur.copy_expert(
        sql.SQL("copy {} ({}) from stdin with (format binary)")
        .format(sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(n) for n in names))
        .as_string(cur),
        stream,
    )


@requires(CustomerClv)
class BusinessKpis(GoldTask):
    table = "gold.business_kpis"
    sql_files = ("gold/business_kpis.sql",)

    def execute(self, conn) -> TaskStats:
        with conn.cursor() as cur:
            from_summary = purchase_summary_covers(cur, self.date)
            cur.execute(db.sql_text("gold/business_kpis.sql"), {**self.sql_params(), "from_summary": from_summary})
            return TaskStats(
                rows_out=max(cur.rowcount, 0), message="from the purchase summary" if from_summary else "from the fact"
            )


class CohortRetention(IncrementalAggregate):
    table = "gold.cohort_retention"
    sql_files = ("gold/cohort_retention.sql",)


GOLD_TASKS: tuple[type[GoldTask], ...] = (
    DimDate,
    DimProduct,
    DimCustomer,
    FactSales,
    AggDailySales,
    AggMonthlySales,
    CustomerAnalytics,
    ProductAnalytics,
    CohortRetention,
    CustomerClv,
    BusinessKpis,
)
