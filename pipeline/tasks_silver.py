"""Silver: typed, cleaned, deduplicated current state, with quality rules and quarantine.

Each task takes the bronze lines of one source and extract date through the
table's model (sql/silver/<table>.sql), then, all in one transaction:
records exact copies as duplicates, evaluates the rules of sql/quality_rules.toml
in one pass, quarantines rows that break a drop rule (once, with every reason),
merges the survivors into silver by business key (the newest version wins),
records older versions as superseded duplicates, checks that every line is
accounted for exactly once, and writes the rule results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import luigi
from psycopg2 import sql
from psycopg2.extras import execute_values

from pipeline import db
from pipeline.base import PhaseClock, TaskStats, WarehouseTask
from pipeline.config import quality as quality_config
from pipeline.config import silver as silver_config
from pipeline.quality import Rule, dimension_scores, load_rules, run_score, table_score
from pipeline.sources import CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES, Source
from pipeline.tasks_bronze import CrmCustomersRaw, ErpProductsRaw, ErpSalesRaw, previous_extract_date


class ConservationError(RuntimeError):
    """Some input line ended in no place, or in two."""


class QualityRuleFailed(RuntimeError):
    """A rule of severity `fail` found failing rows; nothing of the task is committed."""


@dataclass(frozen=True)
class SilverSpec:
    name: str  # rules-file table name and silver table name
    source: Source
    key: str
    columns: tuple[str, ...]  # silver columns taken from the model as they are
    version: tuple[str, ...]  # newest first: the merge keeps the row with the greatest tuple
    first_seen: bool  # keep first_extract_date (the key's earliest extract)

    @property
    def table(self) -> str:
        return f"silver.{self.name}"


CUSTOMERS = SilverSpec(
    name="customers", source=CRM_CUSTOMERS, key="customer_id",
    columns=("customer_id", "first_name", "last_name", "email", "phone", "phone_raw", "address", "city", "state",
             "region", "is_phone_valid", "signup_date", "updated_at"),
    version=("updated_at", "_extract_date", "_load_id", "_line_number"), first_seen=True)
PRODUCTS = SilverSpec(
    name="products", source=ERP_PRODUCTS, key="product_id",
    columns=("product_id", "product_name", "category", "unit_cost", "list_price", "updated_at"),
    version=("updated_at", "_extract_date", "_load_id", "_line_number"), first_seen=True)
SALES = SilverSpec(
    name="sales", source=ERP_SALES, key="order_id",
    columns=("order_id", "customer_id", "product_id", "order_size", "quantity", "unit_price", "amount",
             "order_date"),
    version=("_extract_date", "_load_id", "_line_number"), first_seen=False)

LINEAGE = ("_extract_date", "_load_id", "_line_number")


def _ids(names) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _version_tuple(alias: str, columns: tuple[str, ...]) -> sql.Composable:
    parts = []
    for column in columns:
        ref = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column))
        if column == "updated_at":
            ref = sql.SQL("coalesce({}, '-infinity'::timestamptz)").format(ref)
        parts.append(ref)
    return sql.SQL("({})").format(sql.SQL(", ").join(parts))


class SilverTask(WarehouseTask):
    landing_dir = luigi.Parameter(default="", significant=False)
    spec: SilverSpec

    @property
    def table(self) -> str:
        return self.spec.table

    def model_params(self) -> dict:
        return {}

    def execute(self, conn) -> TaskStats:
        spec = self.spec
        clock = PhaseClock()
        params = {**self.sql_params(), **self.model_params()}
        rules = load_rules().rules(spec.name)
        row_rules = [r for r in rules if r.is_row_level]
        with conn.cursor() as cur:
            cur.execute("select coalesce(array_agg(load_id order by load_id), '{}') from meta.ingested_files "
                        "where source_name = %s and extract_date = %s", (spec.source.name, self.date))
            loads = cur.fetchone()[0]
            params["loads"] = loads
            # Reprocessing a date replaces what its earlier processing recorded.
            cur.execute("delete from silver.quarantine where stage = 'silver' and source_table = %s "
                        "and load_id = any(%s)", (spec.table, loads))
            cur.execute("delete from silver.duplicates where source_table = %s and load_id = any(%s)",
                        (spec.table, loads))

            model = (db.SQL_DIR / "silver" / f"{spec.name}.sql").read_text()
            cur.execute(sql.SQL("create temp table stage on commit drop as {}").format(sql.SQL(model)), params)
            staged = cur.rowcount
            cur.execute("analyze stage")
            clock.lap("stage")

            exact = self._record_exact_copies(cur, params)
            counts = self._evaluate(cur, row_rules, params)
            clock.lap("rules")
            failing = [(rule, counts[rule.name]) for rule in row_rules if rule.severity == "fail"
                       and counts[rule.name]]
            quarantined = self._quarantine(cur, params)
            inserted, updated, superseded = self._merge(cur, params)
            clock.lap("merge")
            self._check_conservation(cur, loads, staged)
            results = self._results(cur, rules, counts, staged - exact, staged)
            if failing:
                self._record_results_outside(results)
                worst = ", ".join(f"{rule.name} ({n} rows)" for rule, n in failing)
                raise QualityRuleFailed(f"{spec.table} for {self.date}: fail-severity rule(s) broken: {worst}; "
                                        "nothing of this task was committed")
            self._record_results(cur, results)
            clock.lap("results")
        duplicates = exact + superseded
        return TaskStats(
            rows_in=staged, rows_out=inserted + updated, rows_rejected=quarantined, rows_duplicate=duplicates,
            phase_seconds=clock.laps,
            message=(f"{staged} lines: {inserted} inserted, {updated} updated, {quarantined} quarantined, "
                     f"{exact} exact duplicates, {superseded} superseded"),
        )

    # -- steps -------------------------------------------------------------------------------------------

    def _record_exact_copies(self, cur, params) -> int:
        cur.execute(sql.SQL(
            """insert into silver.duplicates (run_id, source_table, load_id, line_number, extract_date, business_key,
                                              kind, duplicate_of)
               select %(run_id)s, {table}, _load_id, _line_number, _extract_date, {key}, 'exact_duplicate',
                      'line ' || first_copy
               from stage where copy_number > 1""").format(
            table=sql.Literal(self.spec.table), key=sql.Identifier(self.spec.key)), params)
        return cur.rowcount

    def _evaluate(self, cur, rules: list[Rule], params) -> dict[str, int]:
        """One pass: a pass_N column per rule, the failed drop rules and their reasons per row."""
        passes = [sql.SQL("coalesce(({}), false) as {}").format(rule.predicate(), sql.Identifier(f"pass_{i}"))
                  for i, rule in enumerate(rules)]
        drops = [(i, rule) for i, rule in enumerate(rules) if rule.severity == "drop"]
        failed = sql.SQL(", ").join(
            sql.SQL("case when not {} then {} end").format(sql.Identifier(f"pass_{i}"), sql.Literal(rule.name))
            for i, rule in drops) if drops else sql.SQL("")
        reasons = sql.SQL(", ").join(
            sql.SQL("case when not {} then {} end").format(sql.Identifier(f"pass_{i}"), rule.reason_sql())
            for i, rule in drops) if drops else sql.SQL("")
        cur.execute(sql.SQL(
            """create temp table checked on commit drop as
               select evaluated.*,
                      array_remove(array[{failed}]::text[], null) as failed_drop,
                      array_remove(array[{reasons}]::text[], null) as drop_reasons
               from (select stage.*{passes} from stage where copy_number = 1) as evaluated""").format(
            failed=failed, reasons=reasons,
            passes=sql.SQL("").join(sql.SQL(", ") + p for p in passes)), params)
        if not rules:
            return {}
        cur.execute(sql.SQL("select {} from checked").format(sql.SQL(", ").join(
            sql.SQL("count(*) filter (where not {})").format(sql.Identifier(f"pass_{i}"))
            for i in range(len(rules)))))
        return {rule.name: n for rule, n in zip(rules, cur.fetchone(), strict=True)}

    def _quarantine(self, cur, params) -> int:
        spec = self.spec
        cur.execute(sql.SQL(
            """insert into silver.quarantine (run_id, stage, source_table, source_file, line_number, load_id,
                                              extract_date, business_key, rule_name, reason, record)
               select %(run_id)s, 'silver', {table}, files.source_file, checked._line_number, checked._load_id,
                      checked._extract_date, checked.{key}, checked.failed_drop[1],
                      array_to_string(checked.drop_reasons, '; '),
                      checked.record || jsonb_build_object('failed_rules', to_jsonb(checked.failed_drop))
               from checked
               inner join meta.ingested_files as files on checked._load_id = files.load_id
               where cardinality(checked.failed_drop) > 0""").format(
            table=sql.Literal(spec.table), key=sql.Identifier(spec.key)), params)
        return cur.rowcount

    def _merge(self, cur, params) -> tuple[int, int, int]:
        spec = self.spec
        key = sql.Identifier(spec.key)
        newest_first = sql.SQL(", ").join(
            sql.SQL("{} desc nulls last").format(sql.Identifier(c)) for c in spec.version)
        cur.execute(sql.SQL(
            """create temp table candidates on commit drop as
               select checked.*,
                      row_number() over newest as version_rank,
                      first_value(checked._load_id || ':' || checked._line_number) over newest as newest_line
               from checked
               where cardinality(checked.failed_drop) = 0
               window newest as (partition by checked.{key} order by {order})""").format(
            key=key, order=newest_first))
        # Older versions of a key within this extract.
        cur.execute(sql.SQL(
            """insert into silver.duplicates (run_id, source_table, load_id, line_number, extract_date, business_key,
                                              kind, duplicate_of)
               select %(run_id)s, {table}, _load_id, _line_number, _extract_date, {key}, 'superseded',
                      'line ' || newest_line
               from candidates where version_rank > 1""").format(table=sql.Literal(spec.table), key=key), params)
        superseded = cur.rowcount

        target = sql.Identifier("silver", spec.name)
        first_seen = ["first_extract_date"] if spec.first_seen else []
        insert_columns = [*spec.columns, *first_seen, *LINEAGE]
        select_columns = [sql.Identifier(c) for c in spec.columns]
        if spec.first_seen:
            select_columns.append(sql.SQL("_extract_date"))
        select_columns += [sql.Identifier(c) for c in LINEAGE]
        updates = [sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in (*spec.columns, *LINEAGE)
                   if c != spec.key]
        if spec.first_seen:
            updates.append(sql.SQL("first_extract_date = least(current_row.first_extract_date, "
                                   "excluded.first_extract_date)"))
        cur.execute("create temp table merged (business_key text, is_insert boolean) on commit drop")
        # The line a row replaces stays accounted for: it is recorded as superseded by the new line.
        cur.execute(sql.SQL(
            """with previous as (
                   select {key}, _load_id, _line_number, _extract_date from {target}
                   where {key} in (select {key} from candidates where version_rank = 1)
               ),
               upserted as (
                   insert into {target} as current_row ({columns})
                   select {select} from candidates where version_rank = 1
                   on conflict ({key}) do update set {updates}
                   where {newer} > {current}
                   returning current_row.{key}, (current_row.xmax = 0) as is_insert, current_row._load_id,
                             current_row._line_number
               ),
               replaced as (
                   insert into silver.duplicates (run_id, source_table, load_id, line_number, extract_date,
                                                  business_key, kind, duplicate_of)
                   select %(run_id)s, {table}, previous._load_id, previous._line_number, previous._extract_date,
                          previous.{key}, 'superseded', 'line ' || upserted._load_id || ':' || upserted._line_number
                   from upserted
                   inner join previous on previous.{key} = upserted.{key}
                   where not upserted.is_insert
                       and (previous._load_id, previous._line_number)
                           <> (upserted._load_id, upserted._line_number)
               )
               insert into merged select {key}, is_insert from upserted""").format(
            target=target, columns=_ids(insert_columns), select=sql.SQL(", ").join(select_columns), key=key,
            updates=sql.SQL(", ").join(updates), newer=_version_tuple("excluded", spec.version),
            current=_version_tuple("current_row", spec.version), table=sql.Literal(spec.table)), params)
        cur.execute("select count(*) filter (where is_insert), count(*) filter (where not is_insert) from merged")
        inserted, updated = cur.fetchone()
        # Newest in this extract but older than what silver holds (a later extract was merged first),
        # unless silver's row is this very line (the date is being reprocessed).
        stale = sql.SQL(
            """from candidates
               inner join {target} as current_row on current_row.{key} = candidates.{key}
               where candidates.version_rank = 1
                   and candidates.{key} not in (select business_key from merged)
                   and (current_row._load_id, current_row._line_number)
                       <> (candidates._load_id, candidates._line_number)""").format(target=target, key=key)
        cur.execute(sql.SQL(
            """insert into silver.duplicates (run_id, source_table, load_id, line_number, extract_date, business_key,
                                              kind, duplicate_of)
               select %(run_id)s, {table}, candidates._load_id, candidates._line_number, candidates._extract_date,
                      candidates.{key}, 'superseded',
                      'line ' || current_row._load_id || ':' || current_row._line_number
               {stale}""").format(table=sql.Literal(spec.table), key=key, stale=stale), params)
        superseded += cur.rowcount
        if spec.first_seen:
            cur.execute(sql.SQL(
                """update {target} as current_row set first_extract_date = candidates._extract_date
                   from candidates
                   where current_row.{key} = candidates.{key} and candidates.version_rank = 1
                       and candidates._extract_date < current_row.first_extract_date""").format(
                target=target, key=key))
        return inserted, updated, superseded

    def _check_conservation(self, cur, loads: list[int], staged: int) -> None:
        spec = self.spec
        cur.execute(sql.SQL(
            """with placed as (
                   select _load_id as load_id, _line_number as line_number, 'silver' as place
                   from {target} where _load_id = any(%(loads)s)
                   union all
                   select load_id, line_number, 'quarantine' from silver.quarantine
                   where stage = 'silver' and source_table = %(table)s and load_id = any(%(loads)s)
                   union all
                   select load_id, line_number, 'duplicate' from silver.duplicates
                   where source_table = %(table)s and load_id = any(%(loads)s)
               )
               select count(*) filter (where place = 'silver'), count(*) filter (where place = 'quarantine'),
                      count(*) filter (where place = 'duplicate'), count(distinct (load_id, line_number))
               from placed""").format(target=sql.Identifier("silver", spec.name)),
            {"loads": loads, "table": spec.table})
        in_silver, quarantined, duplicates, distinct_lines = cur.fetchone()
        placed = in_silver + quarantined + duplicates
        if placed != staged or distinct_lines != staged:
            raise ConservationError(
                f"{spec.table} for {self.date}: {staged} bronze lines but {in_silver} silver rows + {quarantined} "
                f"quarantined + {duplicates} duplicates = {placed} ({distinct_lines} distinct lines); "
                "nothing was committed")

    def _results(self, cur, rules: tuple[Rule, ...], counts: dict[str, int], checked: int,
                 staged: int) -> list[dict]:
        results = []
        for rule in rules:
            if rule.is_row_level:
                failed, rows = counts[rule.name], checked
            else:
                failed, rows = self._table_check(cur, rule, staged), 1
            results.append({"table_name": self.spec.table, "rule_name": rule.name, "dimension": rule.dimension,
                            "severity": rule.severity, "rows_checked": rows, "rows_failed": failed,
                            "pass_rate": (1 - failed / rows) if rows else None})
        return results

    def _table_check(self, cur, rule: Rule, staged: int) -> int:
        """1 when the table-level rule fails for this run, else 0."""
        if rule.kind == "volume":
            cur.execute("""select rows_in from meta.task_runs
                           where task_family = %s and status = 'success' and (params->>'date')::date < %s
                           order by (params->>'date')::date desc, finished_at desc limit 1""",
                        (self.task_family, self.date))
            previous = cur.fetchone()
            if not previous or not previous[0]:
                return 0
            ratio = staged / previous[0]
            return int(not rule.params["min_ratio"] <= ratio <= rule.params["max_ratio"])
        if rule.kind == "freshness":
            cur.execute("select max(extract_date) from meta.ingested_files where source_name = %s "
                        "and extract_date <= %s", (self.spec.source.name, self.date))
            newest = cur.fetchone()[0]
            return int(newest is None or self.date - newest > timedelta(days=rule.params["max_age_days"]))
        raise ValueError(f"unknown table-level kind {rule.kind}")

    def _record_results(self, cur, results: list[dict]) -> None:
        if not results:
            return
        execute_values(cur, """
            insert into meta.quality_results (run_id, run_date, table_name, rule_name, dimension, severity,
                                              rows_checked, rows_failed, pass_rate)
            values %s
            on conflict (run_id, table_name, rule_name) do update set
                rows_checked = excluded.rows_checked, rows_failed = excluded.rows_failed,
                pass_rate = excluded.pass_rate, checked_at = now()""",
            [(self.effective_run_id, self.date, r["table_name"], r["rule_name"], r["dimension"], r["severity"],
              r["rows_checked"], r["rows_failed"], r["pass_rate"]) for r in results])

    def _record_results_outside(self, results: list[dict]) -> None:
        """Keep the evidence of a failed rule although the task's transaction rolls back."""
        with db.transaction() as conn, conn.cursor() as cur:
            self._record_results(cur, results)


class DimensionSilverTask(SilverTask):
    """Customers and products: silver for a date also needs the previous extract date's silver.

    Sales check their references against customers and products first seen on or
    before their date; chaining the dimensions makes that hold whatever order
    dates are run in, so a backfill, a rerun or an out-of-order run ends in the
    same silver as one run in date order.
    """

    raw_task: type[WarehouseTask]

    def requires(self):
        common = {"run_id": self.run_id, "landing_dir": self.landing_dir}
        required = [self.raw_task(date=self.date, **common)]
        previous = previous_extract_date(self.landing_dir, self.date)
        if previous is not None:
            required.append(type(self)(date=previous, **common))
        return required


class SilverCustomers(DimensionSilverTask):
    spec = CUSTOMERS
    raw_task = CrmCustomersRaw

    def model_params(self) -> dict:
        config = silver_config()
        return {"calling_code": config.default_calling_code, "national_digits": config.national_number_digits}


class SilverProducts(DimensionSilverTask):
    spec = PRODUCTS
    raw_task = ErpProductsRaw


class SilverSales(SilverTask):
    spec = SALES

    def requires(self):
        common = {"date": self.date, "run_id": self.run_id, "landing_dir": self.landing_dir}
        # Referential rules read the customers and products merged for this date.
        return [ErpSalesRaw(**common), SilverCustomers(**common), SilverProducts(**common)]

    def model_params(self) -> dict:
        config = silver_config()
        return {"small_max": config.order_size_small_max, "medium_max": config.order_size_medium_max}


SILVER_TASKS = (SilverCustomers, SilverProducts, SilverSales)


class QualityGateFailed(RuntimeError):
    """The run's quality score is below the threshold and luigi.cfg says to fail."""


class SilverQualityGate(WarehouseTask):
    """Scores per table and dimension and for the run; fails the run below the threshold."""

    landing_dir = luigi.Parameter(default="", significant=False)
    table = "meta.quality_scores"

    def requires(self):
        return [task(date=self.date, run_id=self.run_id, landing_dir=self.landing_dir) for task in SILVER_TASKS]

    def execute(self, conn) -> TaskStats:
        scores, worst = compute_scores(conn, self.date)
        run_id = self.effective_run_id
        rows = [(run_id, self.date, table, dimension, score, checked)
                for (table, dimension), (score, checked) in scores.items()]
        config = quality_config()
        overall, checked = scores.get(("*", "overall"), (None, 0))
        message = f"run quality score {_percent(overall)} over {checked} rows (threshold {_percent(config.threshold)})"
        breach = overall is not None and overall < config.threshold
        if breach:
            message += "; worst rules: " + ", ".join(
                f"{r['table_name']}.{r['rule_name']} {_percent(r['pass_rate'])}" for r in worst[:3])
        if breach and config.on_breach == "fail":
            with db.transaction() as outside, outside.cursor() as cur:
                _write_scores(cur, rows)
            raise QualityGateFailed(message)
        with conn.cursor() as cur:
            _write_scores(cur, rows)
        return TaskStats(rows_in=checked, rows_out=len(rows), message=("WARNING: " if breach else "") + message)


def _percent(value) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.2f}%"


def _write_scores(cur, rows) -> None:
    execute_values(cur, """
        insert into meta.quality_scores (run_id, run_date, table_name, dimension, score, rows_checked)
        values %s
        on conflict (run_id, table_name, dimension) do update set
            score = excluded.score, rows_checked = excluded.rows_checked, computed_at = now()""", rows)


def latest_results(conn, run_date) -> list[dict]:
    """Each table's rule results from its latest evaluation for the date."""
    with conn.cursor() as cur:
        cur.execute(
            """select distinct on (table_name, rule_name) table_name, rule_name, dimension, severity, rows_checked,
                      rows_failed, pass_rate
               from meta.quality_results where run_date = %s
               order by table_name, rule_name, checked_at desc""",
            (run_date,))
        keys = ("table_name", "rule_name", "dimension", "severity", "rows_checked", "rows_failed", "pass_rate")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def compute_scores(conn, run_date) -> tuple[dict[tuple[str, str], tuple[float | None, int]], list[dict]]:
    """Scores keyed by (table, dimension); ('*', 'overall') is the run. Also the failing rules, worst first."""
    results = latest_results(conn, run_date)
    rule_set = load_rules()
    weights = rule_set.weights
    scores: dict[tuple[str, str], tuple[float | None, int]] = {}
    per_table: list[tuple[float | None, int]] = []
    for table in sorted({r["table_name"] for r in results}):
        table_results = [r for r in results if r["table_name"] == table]
        dims = dimension_scores(table_results)
        for dimension, (score, checked) in dims.items():
            scores[(table, dimension)] = (score, checked)
        # A table weighs by the rows its row-level rules checked (table-level checks count 1 each).
        row_level = {rule.name for rule in rule_set.rules(table.removeprefix("silver.")) if rule.is_row_level}
        rows = max((r["rows_checked"] for r in table_results if r["rule_name"] in row_level), default=0)
        overall = table_score(dims, weights)
        scores[(table, "overall")] = (overall, rows)
        per_table.append((overall, rows))
    scores[("*", "overall")] = (run_score(per_table), sum(n for _s, n in per_table))
    worst = sorted((r for r in results if r["rows_failed"]), key=lambda r: (r["pass_rate"], r["rule_name"]))
    return scores, worst


def quality_summary(url: str, run_date) -> dict:
    with db.transaction(url) as conn:
        scores, worst = compute_scores(conn, run_date)
    return {"scores": scores, "worst": worst}

