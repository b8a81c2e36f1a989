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

from luigi.util import requires
from psycopg2 import sql
from psycopg2.extras import execute_values

from pipeline.base import PhaseClock, TaskStats, WarehouseTask
from pipeline.core import db
from pipeline.core.config import quality as quality_config
from pipeline.core.config import silver as silver_config
from pipeline.core.config import tuning
from pipeline.core.landing import previous_extract_date
from pipeline.core.sources import CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES, Source, SourceSettings, source_settings
from pipeline.quality.rules import Rule, load_rules
from pipeline.quality.scores import compute_scores, percent, quarantined_shares
from pipeline.tasks_bronze import CrmCustomersRaw, ErpProductsRaw, ErpSalesRaw


class ConservationError(RuntimeError):
    """Some input line ended in no place, or in two."""

    retryable = False
    hint = (
        "a bug, not bad data: keep the extract, the run's log and the task's error, and report them; "
        "the date's silver is unchanged"
    )


class QualityRuleFailed(RuntimeError):
    """A rule of severity `fail` found failing rows; nothing of the task is committed."""

    retryable = False
    hint = (
        "the rule and how many rows broke it are in meta.quality_results (console: Data quality); correct "
        "the extract and run the date again, or change the rule's severity in the rules file"
    )


@dataclass(frozen=True)
class SilverSpec:
    name: str  # rules-file table name and silver table name
    source: Source
    key: str
    columns: tuple[str, ...]  # silver columns taken from the model as they are
    version: tuple[str, ...]  # newest first: the merge keeps the row with the greatest tuple
    first_seen: bool  # keep first_extract_date (the key's earliest extract)
    keeps_history: bool = False  # every valid version also goes to silver.<name-singular>_versions
    tracks_deletes: bool = False  # keys absent from a database source's key snapshot are soft-deleted

    @property
    def table(self) -> str:
        return f"silver.{self.name}"

    @property
    def versions_table(self) -> str:
        return f"silver.{self.name.removesuffix('s')}_versions"


CUSTOMERS = SilverSpec(
    name="customers",
    source=CRM_CUSTOMERS,
    key="customer_id",
    columns=(
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "phone_raw",
        "address",
        "city",
        "state",
        "region",
        "is_phone_valid",
        "signup_date",
        "updated_at",
    ),
    version=("updated_at", "_extract_date", "_load_id", "_line_number"),
    first_seen=True,
    keeps_history=True,
    tracks_deletes=True,
)
PRODUCTS = SilverSpec(
    name="products",
    source=ERP_PRODUCTS,
    key="product_id",
    columns=("product_id", "product_name", "category", "unit_cost", "list_price", "updated_at"),
    version=("updated_at", "_extract_date", "_load_id", "_line_number"),
    first_seen=True,
    tracks_deletes=True,
)
SALES = SilverSpec(
    name="sales",
    source=ERP_SALES,
    key="order_id",
    columns=("order_id", "customer_id", "product_id", "order_size", "quantity", "unit_price", "amount", "order_date"),
    version=("_extract_date", "_load_id", "_line_number"),
    first_seen=False,
)

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


def step(name: str, **parts: sql.Composable) -> sql.Composed:
    """A statement of sql/silver/steps/ with its {parts} filled (identifiers and composed SQL only)."""
    return db.sql_statement(f"silver/steps/{name}.sql").format(**parts)


def lines_ctes(spec: SilverSpec) -> sql.Composed:
    """CTEs every model reads: `source` (the date's bronze lines) and `lines`.

    `lines` adds copy_number (1 for the first of byte-identical lines), first_copy
    ('load:line' of that first one), key_rank (rank among the lines using the same
    cleaned key, exact copies last). Only the few lines whose key repeats are
    sorted to find them. The raw values are not carried along: a quarantined
    row's record is read back from bronze by its load and line.
    """
    return step(
        "lines",
        raw=sql.Identifier("bronze", f"{spec.source.bronze_table}_rows"),
        key=sql.Identifier(spec.key),
        raw_columns=_ids(spec.source.columns),
    )


class SilverTask(WarehouseTask):
    layer = "silver"
    spec: SilverSpec

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            spec = cls.spec
            cls.table = spec.table
            cls.model = f"sql/silver/{spec.name}.sql"
            cls.writes = (
                "silver.quarantine",
                "silver.duplicates",
                *((spec.versions_table,) if spec.keeps_history else ()),
                *(("silver.deletions",) if spec.tracks_deletes else ()),
            )

    def model_params(self, settings: SourceSettings) -> dict:
        """The model's own parameters, beside the source's parsing settings."""
        return {}

    def execute(self, conn) -> TaskStats:
        spec = self.spec
        clock = PhaseClock()
        settings = source_settings(spec.source.name)
        params = {**self.sql_params(), **settings.model_params(), **self.model_params(settings)}
        rules = load_rules().rules(spec.name)
        row_rules = [r for r in rules if r.is_row_level]
        with conn.cursor() as cur:
            cur.execute(
                "select coalesce(array_agg(load_id order by load_id), '{}') from meta.ingested_files "
                "where source_name = %s and extract_date = %s",
                (spec.source.name, self.date),
            )
            loads = cur.fetchone()[0]
            params["loads"] = loads
            # Reprocessing a date replaces what its earlier processing recorded.
            cur.execute(
                "delete from silver.quarantine where stage = 'silver' and source_table = %s and load_id = any(%s)",
                (spec.table, loads),
            )
            cur.execute(
                "delete from silver.duplicates where source_table = %s and load_id = any(%s)", (spec.table, loads)
            )

            # Room for the staged extract in memory; both must be set before the first temp table.
            knobs = tuning()
            cur.execute(
                "select set_config('temp_buffers', %s, true), set_config('work_mem', %s, true)",
                (knobs.silver_temp_buffers, knobs.silver_work_mem),
            )
            # Staging one extract is a few big scans and joins: let both cores share them.
            cur.execute("set local parallel_setup_cost = 0; set local parallel_tuple_cost = 0.001")
            # One merge at a time per silver table: concurrent runs queue here, then find their work done.
            cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"merge:{spec.table}",))
            self.report(f"staging {spec.table} from {len(loads)} bronze load(s)", 5)
            staged = self._stage(cur, row_rules, params)
            clock.lap("stage")

            self.report(f"checking {len(row_rules)} rules on {staged:,} rows", 50)
            counts = self._count_failures(cur, row_rules)
            clock.lap("rules")
            failing = [(rule, counts[rule.name]) for rule in row_rules if rule.severity == "fail" and counts[rule.name]]
            quarantined = self._quarantine(cur, params)
            if spec.keeps_history:
                self._record_versions(cur, params)
            self.report(f"merging {staged:,} rows into {spec.table}", 70)
            inserted, updated, exact, superseded = self._merge(cur, params)
            clock.lap("merge")
            self._check_conservation(cur, loads, staged)
            clock.lap("conservation")
            deleted, restored = self._apply_deletes(cur, loads) if spec.tracks_deletes else (0, 0)
            if spec.tracks_deletes:
                clock.lap("deletes")
            results = self._results(cur, rules, counts, staged - exact, staged)
            if failing:
                self._record_results_outside(results)
                worst = ", ".join(f"{rule.name} ({n} rows)" for rule, n in failing)
                raise QualityRuleFailed(
                    f"{spec.table} for {self.date}: fail-severity rule(s) broken: {worst}; "
                    "nothing of this task was committed"
                )
            self._record_results(cur, results)
            clock.lap("results")
        duplicates = exact + superseded
        return TaskStats(
            rows_in=staged,
            rows_out=inserted + updated,
            rows_rejected=quarantined,
            rows_duplicate=duplicates,
            phase_seconds=clock.laps,
            message=(
                f"{staged} lines: {inserted} inserted, {updated} updated, {quarantined} quarantined, "
                f"{exact} exact duplicates, {superseded} superseded"
                + (f"; {deleted} deleted at the source, {restored} back" if deleted or restored else "")
            ),
        )

    # -- steps -------------------------------------------------------------------------------------------

    def _parts(self) -> dict[str, sql.Composable]:
        spec = self.spec
        return {
            "key": sql.Identifier(spec.key),
            "target": sql.Identifier("silver", spec.name),
            "table": sql.Literal(spec.table),
            "raw": sql.Identifier("bronze", f"{spec.source.bronze_table}_rows"),
        }

    def _record_versions(self, cur, params) -> None:
        """Every valid version of the extract (not only the newest): the history gold's SCD2 reads."""
        spec = self.spec
        versions = sql.Identifier(*spec.versions_table.split("."))
        cur.execute(sql.SQL("delete from {} where _load_id = any(%(loads)s)").format(versions), params)
        cur.execute(step("record_versions", versions=versions, columns=_ids((*spec.columns, *LINEAGE))), params)

    def _stage(self, cur, rules: list[Rule], params) -> int:
        """One pass: the model's rows with the rules each row failed (drop rules apart) and the drop reasons."""
        passes = [
            sql.SQL("coalesce(({}), false) as {}").format(rule.predicate(i), sql.Identifier(f"pass_{i}"))
            for i, rule in enumerate(rules)
        ]
        helpers = [cte for i, rule in enumerate(rules) for cte in rule.helper_ctes(i)]

        def failing(selected, label):
            items = [
                sql.SQL("case when not {} then {} end").format(sql.Identifier(f"pass_{i}"), label(rule))
                for i, rule in enumerate(rules)
                if selected(rule)
            ]
            return sql.SQL("array_remove(array[{}]::text[], null)").format(sql.SQL(", ").join(items))

        model_sql = db.sql_statement(f"silver/{self.spec.name}.sql")
        lines = lines_ctes(self.spec)
        cur.execute(sql.SQL("with {} select * from ({}) as cleaned limit 0").format(lines, model_sql), params)
        model_columns = sql.SQL(", ").join(
            sql.SQL("evaluated.{}").format(sql.Identifier(c.name)) for c in cur.description
        )
        cur.execute(
            step(
                "stage",
                lines=lines,
                model=model_sql,
                model_columns=model_columns,
                materialized=sql.SQL("materialized" if helpers else "not materialized"),
                helpers=sql.SQL("").join(sql.SQL(",\n\n") + cte for cte in helpers),
                passes=sql.SQL("").join(sql.SQL(", ") + p for p in passes),
                failed_drop=failing(lambda r: r.severity == "drop", lambda r: sql.Literal(r.name)),
                failed_other=failing(lambda r: r.severity != "drop", lambda r: sql.Literal(r.name)),
                drop_reasons=failing(lambda r: r.severity == "drop", lambda r: r.reason_sql()),
            ),
            params,
        )
        staged = cur.rowcount
        # Statistics for the columns later steps join and filter on (all columns would cost more).
        cur.execute(
            sql.SQL("analyze stage ({})").format(
                _ids((self.spec.key, "_load_id", "_line_number", "copy_number", "key_rank"))
            )
        )
        return staged

    def _count_failures(self, cur, rules: list[Rule]) -> dict[str, int]:
        """Failures per rule over the checked lines (exact copies are not checked again)."""
        cur.execute(step("count_failures"))
        failed = dict(cur.fetchall())
        return {rule.name: failed.get(rule.name, 0) for rule in rules}

    def _quarantine(self, cur, params) -> int:
        cur.execute(step("quarantine", **self._parts()), params)
        return cur.rowcount

    def _merge(self, cur, params) -> tuple[int, int, int, int]:
        """Merge this extract's surviving lines into silver; returns (inserted, updated, exact, superseded).

        The newest version of a key wins (spec.version). Exact copies are recorded as
        such; lines that lose are recorded as superseded: older versions within the
        extract, lines older than what silver holds, and the silver lines that this
        extract replaces.
        """
        spec = self.spec
        parts = self._parts()
        newest_first = sql.SQL(", ").join(sql.SQL("{} desc nulls last").format(sql.Identifier(c)) for c in spec.version)
        cur.execute(
            step(
                "versions",
                newest_first=newest_first,
                line_columns=_ids(dict.fromkeys([spec.key, *LINEAGE, *spec.version])),
                **parts,
            )
        )
        winner = sql.SQL(
            """stage.copy_number = 1 and cardinality(stage.failed_drop) = 0
               and (stage._load_id, stage._line_number) not in (
                   select _load_id, _line_number from versions where version_rank > 1)"""
        )
        cur.execute(sql.SQL("select not exists (select 1 from {target})").format(**parts))
        first_load = cur.fetchone()[0]
        cur.execute(
            step(
                "existing",
                newer=_version_tuple("stage", spec.version),
                current=_version_tuple("current_row", spec.version),
                winner=sql.SQL("false") if first_load else winner,
                **parts,
            )
        )
        cur.execute(step("record_duplicates", **parts), params)
        cur.execute(step("count_duplicates"))
        exact, superseded = cur.fetchone()

        first_seen = ["first_extract_date"] if spec.first_seen else []
        columns = [*spec.columns, *first_seen, *LINEAGE]
        values = [sql.SQL("stage.{}").format(sql.Identifier(c)) for c in spec.columns]
        if spec.first_seen:
            values.append(sql.SQL("stage._extract_date"))
        values += [sql.SQL("stage.{}").format(sql.Identifier(c)) for c in LINEAGE]
        updates = [
            sql.SQL("{c} = stage.{c}").format(c=sql.Identifier(c)) for c in (*spec.columns, *LINEAGE) if c != spec.key
        ]
        if spec.first_seen:
            updates.append(sql.SQL("first_extract_date = least(current_row.first_extract_date, stage._extract_date)"))
        cur.execute(step("update_changed", updates=sql.SQL(", ").join(updates), **parts))
        updated = cur.rowcount
        if spec.first_seen:
            cur.execute(step("update_first_seen", **parts))
        primary_key = sql.Identifier(f"{spec.name}_pkey")
        if first_load:
            # First load: emptying the table in this transaction lets PostgreSQL (wal_level=minimal,
            # as on the embedded server) write the new rows without WAL. It is empty anyway. The
            # primary key is built once after the insert, not row by row (1M lines: merge 2.9 -> 2.7 s).
            cur.execute(sql.SQL("truncate {target}").format(**parts))
            cur.execute(sql.SQL("alter table {target} drop constraint {pk}").format(pk=primary_key, **parts))
        cur.execute(
            step("insert_new", columns=_ids(columns), values=sql.SQL(", ").join(values), winner=winner, **parts)
        )
        inserted = cur.rowcount
        if first_load:
            cur.execute(
                sql.SQL("alter table {target} add constraint {pk} primary key ({key})").format(pk=primary_key, **parts)
            )
        # The load's rows by their load id (conservation), then statistics for later steps and layers
        # (a small load moves only its lineage columns').
        cur.execute("select brin_summarize_new_values(%s::regclass)", (f"{spec.table}_load_idx",))
        db.refresh_statistics(
            cur,
            spec.table,
            inserted + updated,
            tuple(dict.fromkeys([*LINEAGE, *first_seen, *(c for c in spec.version if c not in LINEAGE)])),
            tuning().analyze_full_share,
        )
        return inserted, updated, exact, superseded

    def _check_conservation(self, cur, loads: list[int], staged: int) -> None:
        """Every line of the extract is a silver row, a quarantined row or a duplicate; exactly one."""
        spec = self.spec
        args = {"loads": loads, "table": spec.table}
        cur.execute(step("conservation_counts", **self._parts()), args)
        in_silver, quarantined, duplicates = cur.fetchone()
        cur.execute(step("conservation_overlaps", **self._parts()), args)
        placed_twice = cur.fetchone()[0]
        placed = in_silver + quarantined + duplicates
        if placed != staged or placed_twice:
            raise ConservationError(
                f"{spec.table} for {self.date}: {staged} bronze lines but {in_silver} silver rows + {quarantined} "
                f"quarantined + {duplicates} duplicates = {placed}, {placed_twice} line(s) in two places; "
                "nothing was committed"
            )

    def _apply_deletes(self, cur, loads: list[int]) -> tuple[int, int]:
        """Soft deletes from the date's latest key snapshot; returns (keys deleted, deleted keys back).

        Deleted rows stay in silver (flagged), so the line conservation above is
        unchanged; the deletions are checked on their own: after this, every row is
        live and in the snapshot (or merged after it) or deleted and absent from it.
        A date older than the source's latest extract leaves deletions as the later
        dates set them (they saw the source later).
        """
        spec = self.spec
        # File sources have no watermarks and no snapshots: nothing to do, and no scan of silver.
        cur.execute(
            "select count(*), count(*) filter (where extract_date > %s) from meta.source_watermarks "
            "where source_name = %s",
            (self.date, spec.source.name),
        )
        extracts, later = cur.fetchone()
        if not extracts or later:
            return 0, 0
        cur.execute(
            "select max(load_id) from meta.source_watermarks where load_id = any(%s) and has_key_snapshot", (loads,)
        )
        args = {"loads": loads, "snapshot_load": cur.fetchone()[0]}
        parts = self._parts()
        cur.execute(step("deletes_reset", **parts), args)
        cur.execute(step("deletes_restore", **parts), args)
        restored = cur.rowcount
        deleted = 0
        if args["snapshot_load"] is not None:
            cur.execute(step("deletes_detect", **parts), args)
            deleted = cur.rowcount
        cur.execute(step("deletes_flag", **parts), args)
        cur.execute(step("deletes_check", **parts), args)
        flagged, open_deletions, missed, wrongly_deleted = cur.fetchone()
        if flagged != open_deletions or missed or wrongly_deleted:
            raise ConservationError(
                f"{spec.table} for {self.date}: {flagged} rows flagged deleted but {open_deletions} open deletions; "
                f"{missed} row(s) absent from key snapshot load {args['snapshot_load']} not deleted, "
                f"{wrongly_deleted} in it but deleted; nothing was committed"
            )
        return deleted, restored

    def _results(self, cur, rules: tuple[Rule, ...], counts: dict[str, int], checked: int, staged: int) -> list[dict]:
        results = []
        for rule in rules:
            if rule.is_row_level:
                failed, rows = counts[rule.name], checked
            else:
                failed, rows = self._table_check(cur, rule, staged), 1
            results.append(
                {
                    "table_name": self.spec.table,
                    "rule_name": rule.name,
                    "dimension": rule.dimension,
                    "severity": rule.severity,
                    "rows_checked": rows,
                    "rows_failed": failed,
                    "pass_rate": (1 - failed / rows) if rows else None,
                }
            )
        return results

    def _table_check(self, cur, rule: Rule, staged: int) -> int:
        """1 when the table-level rule fails for this run, else 0."""
        if rule.kind == "volume":
            cur.execute(
                """select rows_in from meta.task_runs
                           where task_family = %s and status = 'success' and (params->>'date')::date < %s
                           order by (params->>'date')::date desc, finished_at desc limit 1""",
                (self.task_family, self.date),
            )
            previous = cur.fetchone()
            if not previous or not previous[0]:
                return 0
            ratio = staged / previous[0]
            return int(not rule.params["min_ratio"] <= ratio <= rule.params["max_ratio"])
        if rule.kind == "freshness":
            cur.execute(
                "select max(extract_date) from meta.ingested_files where source_name = %s and extract_date <= %s",
                (self.spec.source.name, self.date),
            )
            newest = cur.fetchone()[0]
            return int(newest is None or self.date - newest > timedelta(days=rule.params["max_age_days"]))
        raise ValueError(f"unknown table-level kind {rule.kind}")

    def _record_results(self, cur, results: list[dict]) -> None:
        if not results:
            return
        execute_values(
            cur,
            """
            insert into meta.quality_results (run_id, run_date, table_name, rule_name, dimension, severity,
                                              rows_checked, rows_failed, pass_rate)
            values %s
            on conflict (run_id, run_date, table_name, rule_name) do update set
                rows_checked = excluded.rows_checked, rows_failed = excluded.rows_failed,
                pass_rate = excluded.pass_rate, checked_at = now()""",
            [
                (
                    self.effective_run_id,
                    self.date,
                    r["table_name"],
                    r["rule_name"],
                    r["dimension"],
                    r["severity"],
                    r["rows_checked"],
                    r["rows_failed"],
                    r["pass_rate"],
                )
                for r in results
            ],
        )

    def _record_results_outside(self, results: list[dict]) -> None:
        """Keep the evidence of a failed rule although the task's transaction rolls back."""
        with self.warehouse.transaction() as conn, conn.cursor() as cur:
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
        required = [self.clone(self.raw_task)]
        previous = previous_extract_date(self.landing_dir, self.date)
        if previous is not None:
            required.append(self.clone(date=previous))
        return required


class SilverCustomers(DimensionSilverTask):
    spec = CUSTOMERS
    raw_task = CrmCustomersRaw
    # The sales lines are checked against their customers' signup dates, so silver sales waits for this
    # chain: with two workers its bronze load goes first, beside the sales load (Luigi passes a task's
    # priority on to what it requires; the CLV chain in gold has 10).
    priority = 20

    def model_params(self, settings: SourceSettings) -> dict:
        config = silver_config()
        spellings, values = settings.vocabulary_arrays("region")
        return {
            "calling_code": config.default_calling_code,
            "national_digits": config.national_number_digits,
            "region_spellings": spellings,
            "region_values": values,
        }


class SilverProducts(DimensionSilverTask):
    spec = PRODUCTS
    raw_task = ErpProductsRaw


# Referential rules read the customers and products merged for this date.
@requires(ErpSalesRaw, SilverCustomers, SilverProducts)
class SilverSales(SilverTask):
    spec = SALES

    def model_params(self, settings: SourceSettings) -> dict:
        config = silver_config()
        return {"small_max": config.order_size_small_max, "medium_max": config.order_size_medium_max}


SILVER_TASKS = (SilverCustomers, SilverProducts, SilverSales)


class QualityGateFailed(RuntimeError):
    """The run lost too many lines to quarantine, or scored below the threshold, and luigi.cfg says to fail."""

    retryable = False  # the same data fails the same way (pipeline/base.py: an expected failure)
    hint = (
        "see the quarantined lines and failing rules (console: Data quality; or silver.quarantine for the "
        "date), correct the extract and run the date again; if the loss is acceptable, raise [quality] "
        "threshold / max_quarantined_share or set on_breach = warn in luigi.cfg"
    )


@requires(*SILVER_TASKS)
class SilverQualityGate(WarehouseTask):
    """Scores per table and dimension and for the run, and the share of lines each table lost to quarantine.

    Fails the run (or warns, [quality] on_breach) when the run score is below
    [quality] threshold or when any table's quarantined share is above
    [quality] max_quarantined_share: an averaged score hides a table that lost
    most of its lines.
    """

    layer = "silver"
    table = "meta.quality_scores"
    model = "pipeline/quality/scores.py"
    writes = ("meta.quarantined_shares",)

    def execute(self, conn) -> TaskStats:
        scores, worst = compute_scores(conn, self.date)
        tables = {task.spec.source.name: task.table for task in self.requires()}  # source -> silver table
        shares = quarantined_shares(conn, self.date, tables)
        run_id = self.effective_run_id
        rows = [
            (run_id, self.date, table, dimension, score, checked)
            for (table, dimension), (score, checked) in scores.items()
        ]
        config = quality_config()
        limit = config.max_quarantined_share
        share_rows = [
            (
                run_id,
                self.date,
                share.table,
                share.lines_in,
                share.bronze_rejected,
                share.silver_quarantined,
                share.share,
                limit,
                share.exceeds(limit),
            )
            for share in shares.values()
        ]
        overall, checked = scores.get(("*", "overall"), (None, 0))
        score_text = f"run quality score {percent(overall)} over {checked} rows (threshold {percent(config.threshold)})"
        low_score = overall is not None and overall < config.threshold
        if low_score:
            score_text += "; worst rules: " + ", ".join(
                f"{r['table_name']}.{r['rule_name']} {percent(r['pass_rate'])}" for r in worst[:3]
            )
        lossy = [share for share in shares.values() if share.exceeds(limit)]
        loss_text = "; ".join(share.describe(limit) for share in lossy)
        shares_text = (
            "quarantined "
            + ", ".join(f"{share.table} {percent(share.share)}" for share in shares.values())
            + f" (limit {percent(limit)})"
        )
        breach = low_score or bool(lossy)
        if breach and config.on_breach == "fail":
            with self.warehouse.transaction() as outside, outside.cursor() as cur:
                _write_scores(cur, rows)
                _write_shares(cur, share_rows)
            raise QualityGateFailed("; ".join(text for text in (loss_text, score_text) if text))
        with conn.cursor() as cur:
            _write_scores(cur, rows)
            _write_shares(cur, share_rows)
        message = "; ".join(text for text in (loss_text, score_text, shares_text) if text)
        return TaskStats(rows_in=checked, rows_out=len(rows), message=("WARNING: " if breach else "") + message)


def _write_scores(cur, rows) -> None:
    execute_values(
        cur,
        """
        insert into meta.quality_scores (run_id, run_date, table_name, dimension, score, rows_checked)
        values %s
        on conflict (run_id, run_date, table_name, dimension) do update set
            score = excluded.score, rows_checked = excluded.rows_checked, computed_at = now()""",
        rows,
    )


def _write_shares(cur, rows) -> None:
    if not rows:
        return
    execute_values(
        cur,
        """
        insert into meta.quarantined_shares (run_id, run_date, table_name, lines_in, bronze_rejected,
                                             silver_quarantined, quarantined_share, max_share, is_breach)
        values %s
        on conflict (run_id, run_date, table_name) do update set
            lines_in = excluded.lines_in, bronze_rejected = excluded.bronze_rejected,
            silver_quarantined = excluded.silver_quarantined, quarantined_share = excluded.quarantined_share,
            max_share = excluded.max_share, is_breach = excluded.is_breach, computed_at = now()""",
        rows,
    )
