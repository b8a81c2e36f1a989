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

from pipeline.base import PhaseClock, TaskStats, WarehouseTask, model_sql
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
    text = "\n".join(line for line in script.as_string(cur).splitlines() if not line.lstrip().startswith("--"))
    results = []
    for statement in re.split(r";\s*\n", text):
        code = statement.strip()
        if code:
            cur.execute(code, params)
            results.append((code.splitlines()[0], cur.rowcount))
    return results


def _ids(names, alias: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, name) if alias else sql.Identifier(name) for name in names)


def model_columns(cur, model: sql.Composable, params: dict) -> list[str]:
    """The columns a model's select gives, in order (planned, not run)."""
    cur.execute(sql.SQL("select * from ({}) as model limit 0").format(model), params)
    return [column.name for column in cur.description]


def write_model(
    cur,
    strategy: str,
    table: str,
    model: sql.Composable,
    params: dict,
    *,
    key: tuple[str, ...] = (),
    partition: str = "",
    measures: tuple[str, ...] = (),
) -> list[tuple[str, int]]:
    """Write a model's rows to a table by a write strategy of sql/gold/steps/ (its name); the statements run
    with their row counts. The columns written are the model's, by name."""
    columns = model_columns(cur, model, params)
    parts: dict[str, sql.Composable] = {
        "table": sql.Identifier(*table.split(".")),
        "model": model,
        "columns": _ids(columns),
    }
    if strategy == "upsert":
        values = [name for name in columns if name not in key]
        parts |= {
            "key": _ids(key),
            "values": _ids(values),
            "excluded": _ids(values, "excluded"),
            "current": _ids(values, "current_row"),
        }
    elif strategy == "scd2":  # versions matched on (key, valid_from)
        values = [name for name in columns if name not in (*key, "valid_from")]
        parts |= {
            "key": sql.Identifier(*key),
            "values": _ids(values),
            "desired": _ids(values, "desired"),
            "current": _ids(values, "current_version"),
        }
    elif strategy == "replace_partition":
        parts["partition"] = sql.Identifier(partition)
    elif strategy == "incremental_sum":
        parts |= {
            "key": _ids(key),
            "measures": _ids(measures),
            "sums": sql.SQL(", ").join(
                sql.SQL("{} + {}").format(sql.Identifier("current_row", name), sql.Identifier("excluded", name))
                for name in measures
            ),
            "count": sql.Identifier(measures[0]),
        }
    elif strategy == "replace_changed_keys":
        parts["key"] = sql.Identifier(*key)
    else:
        raise ValueError(f"unknown write strategy {strategy!r}")
    return run_script(cur, gold_step(strategy, **parts), params)


def write_derived(cur, table: str, key: tuple[str, ...], model: sql.Composable) -> int:
    """Set the columns a derived select gives (by key) where they differ (sql/gold/steps/derived_columns.sql)."""
    values = [name for name in model_columns(cur, model, {}) if name not in key]
    match = sql.SQL(" and ").join(
        sql.SQL("{} = {}").format(sql.Identifier("current_row", name), sql.Identifier("derived", name)) for name in key
    )
    script = gold_step(
        "derived_columns",
        table=sql.Identifier(*table.split(".")),
        model=model,
        values=_ids(values),
        derived=_ids(values, "derived"),
        current=_ids(values, "current_row"),
        match=match,
    )
    return sum(count for _, count in run_script(cur, script))


@requires(SilverQualityGate)
class GoldTask(WarehouseTask):
    """A gold table of the date; it needs the date's silver through the quality gate.

    Its model (sql/gold/<table>.sql) is one select; ``strategy`` names how its rows
    are written (sql/gold/steps/<strategy>.sql): ``upsert`` on ``key`` (type 1),
    ``scd2`` (versions of ``key``), ``replace_partition`` (the date's rows, by
    ``partition``), ``incremental_sum`` (``measures`` added per ``key``) or
    ``replace_changed_keys``; ``derived`` names a select of columns computed after
    the sums. ``settings`` are set for the transaction.
    """

    layer = "gold"
    strategy: str = ""
    key: tuple[str, ...] = ()
    partition: str = ""
    measures: tuple[str, ...] = ()
    derived: str = ""
    settings: dict[str, str] = {}  # noqa: RUF012 - read only

    def model_sql(self) -> sql.SQL:
        return db.sql_statement(model_sql(self.model))

    def write(self, cur, params: dict | None = None) -> list[tuple[str, int]]:
        """The model's rows written by the task's strategy (and its derived columns set)."""
        for name, value in self.settings.items():
            cur.execute("select set_config(%s, %s, true)", (name, value))  # set local
        counts = write_model(
            cur,
            self.strategy,
            self.table,
            self.model_sql(),
            params if params is not None else self.sql_params(),
            key=self.key,
            partition=self.partition,
            measures=self.measures,
        )
        if self.derived:
            write_derived(cur, self.table, self.key, db.sql_statement(model_sql(self.derived)))
        return counts

    def execute(self, conn) -> TaskStats:
        with conn.cursor() as cur:
            counts = self.write(cur)
        return TaskStats(rows_out=max(counts[-1][1], 0))


class DimDate(GoldTask):
    table = "gold.dim_date"
    model = "sql/gold/dim_date.sql"
    strategy = "upsert"
    key = ("date_key",)


class DimProduct(GoldTask):
    table = "gold.dim_product"
    model = "sql/gold/dim_product.sql"
    strategy = "upsert"
    key = ("product_id",)


class DimCustomer(GoldTask):
    table = "gold.dim_customer"
    model = "sql/gold/dim_customer.sql"
    strategy = "scd2"
    key = ("customer_id",)


class FactSales(GoldTask):
    """The fact of a date also needs the previous extract date's: whatever date runs first, gold
    ends as one run of every date in order would leave it (the CLV and KPIs of a date read every
    order up to it)."""

    table = "gold.fact_sales"
    model = "sql/gold/fact_sales.sql"
    strategy = "fact_batches"  # the changed lines as a batch of deltas (sql/gold/steps/fact_sales_*.sql)
    state = ("gold.fact_sales_delta", "gold.fact_sales_batches")

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
                counts = run_script(cur, gold_step("fact_sales_first_load", model=self.model_sql()), params)
                inserted = next(n for first, n in counts if first.startswith("insert into gold.fact_sales ("))
                clock.lap("load")
                return TaskStats(
                    rows_in=inserted,
                    rows_out=inserted,
                    phase_seconds=clock.laps,
                    message=f"first load: {inserted} fact rows",
                )
            # The date's few thousand lines are compared with the fact by key; its pages were just read
            # or written, so an index probe is no dearer than a sequential read (with the default 4
            # PostgreSQL scanned the 1M-line fact instead: 0.29 -> 0.23 s).
            cur.execute("set local random_page_cost = 1.1")
            cur.execute(gold_step("fact_sales_changes", model=self.model_sql()), params)
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
    """A table kept from the fact incrementally: its model applies F(new_facts) - F(old_facts) per batch."""

    strategy = "incremental_sum"
    state = ("gold.fact_sales_watermarks",)

    full_refresh = luigi.BoolParameter(
        default=False, significant=False, description="recompute from the whole fact instead of catching up"
    )

    def catch_up(self, cur, *, full: bool = False) -> FactCatchUp:
        """Bring the table up to the fact, in the open transaction."""
        catch_up = catch_up_with_fact(cur, self.table, full=full)
        if catch_up.mode != "none":
            self.write(cur, {**self.sql_params(), "full": catch_up.full})
        finish_catch_up(cur, catch_up)
        return catch_up

    def execute(self, conn) -> TaskStats:
        clock = PhaseClock()
        with conn.cursor() as cur:
            # Room for the group-bys over a whole fact (hash aggregates of ~1M groups per million lines).
            cur.execute("select set_config('work_mem', %s, true)", (tuning().gold_work_mem,))  # set local
            catch_up = self.catch_up(cur, full=self.full_refresh)
            clock.lap("apply")
            rows_out = 0
            if catch_up.mode != "none":
                # An aggregate is small: report the rows it holds now (a catch-up touches some of them).
                cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(*self.table.split("."))))
                rows_out = cur.fetchone()[0]
        return TaskStats(
            rows_in=catch_up.lines, rows_out=rows_out, message=catch_up.describe(), phase_seconds=clock.laps
        )


class CustomerPurchaseSummary(IncrementalAggregate):
    """Per customer over every order line of the fact (orders, purchase days, revenue, first and last order
    date): what the CLV and the KPIs of a date read when no line is dated after it."""

    table = "gold.customer_purchase_summary"
    model = "sql/gold/customer_purchase_summary.sql"
    strategy = "replace_changed_keys"
    key = ("customer_id",)


def purchase_summary_covers(cur, as_of) -> bool:
    """Bring gold.customer_purchase_summary up to the fact (a later date's facts may have come since its task
    ran); True when no order line is dated after as_of."""
    CustomerPurchaseSummary(date=as_of).catch_up(cur)
    cur.execute("select coalesce(max(last_order_date) <= %s, true) from gold.customer_purchase_summary", (as_of,))
    return cur.fetchone()[0]


class AggDailySales(IncrementalAggregate):
    table = "gold.agg_daily_sales"
    model = "sql/gold/agg_daily_sales.sql"
    key = ("order_date", "region")
    measures = ("orders", "customers", "quantity", "revenue")


class AggMonthlySales(IncrementalAggregate):
    table = "gold.agg_monthly_sales"
    model = "sql/gold/agg_monthly_sales.sql"
    key = ("month_start", "region")
    measures = ("orders", "customers", "quantity", "revenue")


class CustomerAnalytics(IncrementalAggregate):
    table = "gold.customer_analytics"
    model = "sql/gold/customer_analytics.sql"
    key = ("region",)
    measures = ("orders", "customers", "revenue")
    derived = "sql/gold/derived/customer_analytics.sql"


class ProductAnalytics(IncrementalAggregate):
    table = "gold.product_analytics"
    model = "sql/gold/product_analytics.sql"
    key = ("product_key",)
    measures = ("total_orders", "total_quantity_sold", "customers", "revenue")
    derived = "sql/gold/derived/product_analytics.sql"


@requires(FactSales, CustomerPurchaseSummary)
class CustomerClv(GoldTask):
    """Historical and predicted CLV as of the run date; the two model fits go to gold.clv_model.

    The per-customer summary is one SQL query (sql/gold/customer_rfm.sql), read
    from gold.customer_purchase_summary when no order line is dated after the
    run date (else from the fact); the BG/NBD and Gamma-Gamma fits run on its
    columns as numpy arrays (pipeline/clv/models.py), and the predictions go back with
    COPY to be joined to the summary (sql/gold/customer_clv.sql).
    """

    table = "gold.customer_clv"
    model = "sql/gold/customer_clv.sql"
    # The longest chain after the fact (purchase summary, then the fits): Luigi passes a task's priority on to
    # what it requires, so a free worker takes the summary and this before the aggregates, which the other
    # worker runs meanwhile.
    priority = 10
    strategy = "replace_partition"
    partition = "as_of_date"
    writes = ("gold.clv_model",)
    # It brings the purchase summary up to the fact first (purchase_summary_covers).
    state = ("gold.customer_purchase_summary", "gold.fact_sales_watermarks")

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
            # Rounded to gold.customer_clv's scales here; NaN (no prediction) is stored as null.
            predictions = {
                "ordinal": np.arange(1, len(x) + 1, dtype=float),
                "recency": Numeric(t_x, 12, 4),
                "t": Numeric(t, 12, 4),
                "expected_purchases": Numeric(clv.expected_purchases(bg, horizon, x, t_x, t), 14, 6),
                "p_alive": Numeric(clv.p_alive(bg, x, t_x, t), 7, 6),
                "expected_avg_spend": Numeric(clv.expected_average_spend(gg, x, m), 14, 2),
                "predicted_clv": Numeric(
                    clv.predicted_clv(bg, gg, x, t_x, t, m, periods, rate, time_unit=period), 16, 2
                ),
            }
            cur.execute(
                "create temp table clv_predictions (ordinal float8, recency numeric, t numeric, "
                "expected_purchases numeric, p_alive numeric, expected_avg_spend numeric, predicted_clv numeric) "
                "on commit drop"
            )
            copy_in_binary(cur, "clv_predictions", predictions)
            self.write(cur)
            fits = (("bg_nbd", bg), ("gamma_gamma", gg))
            write_model(
                cur,
                "replace_partition",
                "gold.clv_model",
                db.sql_statement("gold/clv_model.sql"),
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
                partition="as_of_date",
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
    copy_in_binary(cur, table, arrays)


@dataclass(frozen=True)
class Numeric:
    """A float array to COPY into a numeric column as numeric(precision, scale) values: rounded half away
    from zero in Python, so that PostgreSQL does not convert each float (float8 -> numeric formats every
    value as text: 76K customers x 6 columns took 0.13 s of CustomerClv's 0.25 s insert). NaN and
    infinities go as numeric NaN."""

    values: np.ndarray
    precision: int
    scale: int


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split of float64 values into two halves of 26 bits each (a = high + low exactly)."""
    c = 134217729.0 * a  # 2**27 + 1
    high = c - (c - a)
    return high, a - high


def _round_half_up(magnitudes: np.ndarray, power: float) -> np.ndarray:
    """round(magnitude x power), halves up, of the exact product (Dekker's two-product gives its rounding
    error), so a product that floating point rounds onto or off a half does not round the wrong way.
    `power` is 10**scale, exact in float64 for the scales used."""
    with np.errstate(invalid="ignore", over="ignore"):
        product = magnitudes * power
        (a_high, a_low), (b_high, b_low) = _split(magnitudes), _split(np.full_like(magnitudes, power))
        error = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low
        whole = np.floor(product)
        return whole + ((product - whole) - 0.5 >= -error)


def _numeric_field(name: str, column: Numeric) -> tuple[list, dict]:
    """The fixed-width binary COPY field of a Numeric column (every value with the same number of
    base-10000 digits; PostgreSQL strips the leading and trailing zero ones) and the field's values."""
    p, s = column.precision, column.scale
    int_groups, frac_groups = max(1, -(-(p - s) // 4)), -(-s // 4)
    groups = int_groups + frac_groups
    if p + 4 * frac_groups - s > 18:
        raise ValueError(f"{name}: numeric({p}, {s}) does not fit the 64-bit encoding")
    values = np.asarray(column.values, dtype=float)
    special = ~np.isfinite(values)
    scaled = _round_half_up(np.abs(np.where(special, 0.0, values)), 10.0**s)
    if (scaled >= 10.0**p).any():
        worst = values[~special][np.argmax(scaled[~special])]
        raise ValueError(f"{name}: {float(worst)!r} does not fit numeric({p}, {s})")
    whole = scaled.astype(np.int64) * 10 ** (4 * frac_groups - s)
    digits = np.empty((len(values), groups), dtype=np.int64)
    for group in range(groups - 1, -1, -1):
        whole, digits[:, group] = np.divmod(whole, 10_000)
    sign = np.where(special, 0xC000, np.where((values < 0) & (scaled > 0), 0x4000, 0x0000))
    fields = [
        (f"{name}_length", ">i4"),
        (f"{name}_ndigits", ">i2"),
        (f"{name}_weight", ">i2"),
        (f"{name}_sign", ">u2"),
        (f"{name}_dscale", ">u2"),
        (f"{name}_digits", ">i2", (groups,)),
    ]
    return fields, {
        f"{name}_length": 8 + 2 * groups,
        f"{name}_ndigits": groups,
        f"{name}_weight": int_groups - 1,
        f"{name}_sign": sign,
        f"{name}_dscale": s,
        f"{name}_digits": np.where(special[:, None], 0, digits),
    }


def copy_in_binary(cur, table: str, columns: dict[str, np.ndarray | Numeric]) -> None:
    """COPY float arrays into a table's float8 columns (NaN allowed) and Numeric ones into its numeric
    columns, in binary format: one fixed-width numpy record per row, no Python object per value."""
    names = list(columns)
    fields, values = [("count", ">i2")], {"count": len(names)}
    for name, column in columns.items():
        if isinstance(column, Numeric):
            more, filled = _numeric_field(name, column)
        else:
            more, filled = [(f"{name}_length", ">i4"), (name, ">f8")], {f"{name}_length": 8, name: column}
        fields += more
        values.update(filled)
    first = columns[names[0]]
    rows = np.empty(len(first.values if isinstance(first, Numeric) else first), dtype=np.dtype(fields))
    for field, value in values.items():
        rows[field] = value
    stream = io.BytesIO(PGCOPY_HEADER + rows.tobytes() + PGCOPY_TRAILER)
    cur.copy_expert(
        sql.SQL("copy {} ({}) from stdin with (format binary)")
        .format(sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(n) for n in names))
        .as_string(cur),
        stream,
    )


@requires(FactSales, CustomerPurchaseSummary, CustomerClv)
class BusinessKpis(GoldTask):
    table = "gold.business_kpis"
    model = "sql/gold/business_kpis.sql"
    strategy = "replace_partition"
    partition = "run_date"
    state = ("gold.customer_purchase_summary", "gold.fact_sales_watermarks")

    def execute(self, conn) -> TaskStats:
        with conn.cursor() as cur:
            from_summary = purchase_summary_covers(cur, self.date)
            counts = self.write(cur, {**self.sql_params(), "from_summary": from_summary})
            return TaskStats(
                rows_out=max(counts[-1][1], 0),
                message="from the purchase summary" if from_summary else "from the fact",
            )


class CohortRetention(IncrementalAggregate):
    table = "gold.cohort_retention"
    model = "sql/gold/cohort_retention.sql"
    key = ("cohort_month", "months_since_first")
    measures = ("active_customers", "revenue")
    derived = "sql/gold/derived/cohort_retention.sql"
    settings = {"enable_mergejoin": "off"}  # noqa: RUF012 - see the model
