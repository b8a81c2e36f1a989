"""Bronze: one task per source and extract date, loading the landing file with COPY."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import luigi
from luigi.util import inherits
from psycopg2 import sql
from psycopg2.extras import execute_values

from pipeline import extractors
from pipeline.base import PhaseClock, TaskStats, WarehouseTask
from pipeline.core import db, ingest
from pipeline.core.config import bronze, landing_dir, tuning, watch
from pipeline.core.landing import _source, check_landing_file, landing_file
from pipeline.core.sources import CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES, Source, source_settings


@inherits(WarehouseTask)  # its date and landing dir
class LandingFile(luigi.ExternalTask):
    """A day's extract in the landing dir; Luigi reports it as missing input when absent."""

    source_name = luigi.Parameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(landing_file(self.landing_dir, self.date, _source(self.source_name))))


@inherits(WarehouseTask)  # its date and landing dir
class LandingReady(luigi.ExternalTask):
    """A day's landing folder is complete by the landing watcher's rule (pipeline/operations/watch.py): `_SUCCESS`,
    or every file-kind source's file present and none written within luigi.cfg [watch]
    ready_quiet_seconds. The file bronze tasks require it when that is above 0, so a plain `luigi` run
    reports a folder still being written as missing input instead of loading half a file."""

    @property
    def folder(self) -> Path:
        return Path(self.landing_dir or landing_dir()) / self.date.isoformat()

    def readiness(self):
        from pipeline.core.landing import readiness

        return readiness(self.folder, watch().ready_quiet_seconds)

    def complete(self) -> bool:
        return self.readiness().ready


class BronzeTask(WarehouseTask):
    """Load one landing file into bronze.<source>_raw; broken lines go to silver.quarantine."""

    layer = "bronze"
    model = "sources.toml"  # the landing file contract; pipeline/core/ingest.py loads by it
    source: Source

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "source" in cls.__dict__:
            cls.table = f"bronze.{cls.source.bronze_table}"  # the contract's view over the rows table
            cls.writes = ("silver.quarantine",)  # broken lines
            cls.rows_table = f"{cls.table}_rows"  # the lines loaded (purged by retention)
            cls.state = (cls.rows_table, "bronze.source_key_snapshots")

    def requires(self):
        if source_settings(self.source.name).kind != "file":
            return []  # a database or API source is extracted when the task runs
        landing = self.clone(LandingFile, source_name=self.source.name)
        if watch().ready_quiet_seconds > 0:
            return [landing, self.clone(LandingReady)]
        return landing

    def execute(self, conn) -> TaskStats:
        settings = source_settings(self.source.name)
        extracted = None
        if settings.kind == "file":
            path = landing_file(self.landing_dir, self.date, self.source).resolve()
        else:
            workdir = db.metalayer_home() / "extracts" / self.source.name / self.date.isoformat()
            workdir.mkdir(parents=True, exist_ok=True)
            extracted = extractors.extract(settings, self.date, workdir, self.warehouse)
            path = extracted.path.resolve()
        clock = PhaseClock()
        check_landing_file(path, self.source)
        try:
            sha256, size = ingest.file_digest(path)
        except OSError as exc:
            raise ingest.LandingFileError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
        clock.lap("sha256")
        with conn.cursor() as cur:
            # Two runs loading the same file serialize here; the second finds it ingested.
            cur.execute(
                "select pg_advisory_xact_lock(hashtext(%s))", (f"bronze:{self.source.name}:{sha256}:{self.date}",)
            )
            cur.execute(
                """select load_id, extract_date, source_file from meta.ingested_files
                   where source_name = %s and file_sha256 = %s and extract_date = %s""",
                (self.source.name, sha256, self.date),
            )
            previous = cur.fetchone()
            if previous:
                return TaskStats(
                    status="skipped",
                    message=(
                        f"{path} has the same sha256 as load {previous[0]} ({previous[2]}, extract date "
                        f"{previous[1]}); not loaded again"
                    ),
                )
            cur.execute(
                """insert into meta.ingested_files (run_id, source_name, extract_date, source_file, file_sha256,
                                                    file_bytes)
                   values (%s, %s, %s, %s, %s, %s) returning load_id""",
                (self.effective_run_id, self.source.name, self.date, str(path), sha256, size),
            )
            load_id = cur.fetchone()[0]
            config = bronze()
            context = ingest.LoadContext(
                settings=source_settings(self.source.name),
                path=path,
                extract_date=self.date,
                run_id=self.effective_run_id,
                load_id=load_id,
                max_record_lines=config.max_record_lines,
                buffer_bytes=config.copy_buffer_bytes,
            )
            try:
                loaded = ingest.copy_file(cur, context, progress=lambda done: self._progress(done, size))
            except ingest.LandingFileError as exc:
                # The file is refused and this transaction rolls back; the drift that refused it is kept.
                if getattr(exc, "drift", None):
                    with self.warehouse.transaction() as outside, outside.cursor() as outside_cur:
                        record_drift(outside_cur, self.effective_run_id, self.source.name, self.date, path, exc.drift)
                raise
            stats = loaded.stats
            record_drift(cur, self.effective_run_id, self.source.name, self.date, path, loaded.drift)
            if extracted is not None:
                extracted.on_commit(cur, load_id)  # e.g. the new watermark, in the load's transaction
            clock.lap("copy")
            cur.execute(
                """update meta.ingested_files
                   set physical_lines = %s, records = %s, rows_loaded = %s, rows_rejected = %s
                   where load_id = %s""",
                (stats.physical_lines, stats.records, stats.rows_loaded, stats.rows_rejected, load_id),
            )
            # The BRIN index on _load_id knows the new pages only once they are summarized; until
            # autovacuum gets there, every unsummarized page matches every load id, and the silver
            # stage of a 10K-line load read the whole table six times (0.39 s instead of 0.1 s).
            cur.execute("select brin_summarize_new_values(%s::regclass)", (f"{self.rows_table}_load_idx",))
            clock.lap("summarize")
            db.refresh_statistics(
                cur,
                self.rows_table,
                stats.rows_loaded,
                ("_load_id", "_line_number"),
                tuning().analyze_full_share,
            )
            clock.lap("analyze")
            if config.profile_columns:
                profile_load(cur, self.source, load_id, stats.rows_loaded, config.profile_sample_rows)
                clock.lap("profile")
        rejected = ", ".join(f"{rule}={n}" for rule, n in sorted(stats.rejects_by_rule.items()))
        return TaskStats(
            rows_in=stats.records,
            rows_out=stats.rows_loaded,
            rows_rejected=stats.rows_rejected,
            phase_seconds=clock.laps,
            message=f"{path}: {stats.rows_loaded} rows loaded" + (f"; rejected {rejected}" if rejected else ""),
        )

    def _progress(self, done_bytes: int, total_bytes: int) -> None:
        if total_bytes:
            percent = min(100, int(done_bytes * 100 / total_bytes))
            self.set_progress_percentage(percent)
            self.set_status_message(f"COPY {self.source.name}: {done_bytes / 1e6:.1f} of {total_bytes / 1e6:.1f} MB")


def record_drift(cur, run_id: str, source_name: str, extract_date: date, path: Path, drift: list[ingest.Drift]) -> None:
    """meta.schema_drift: one row per column in which the file differs from its contract."""
    # A reprocessed date replaces what its earlier load of the same file recorded.
    cur.execute(
        "delete from meta.schema_drift where source_name = %s and extract_date = %s and source_file = %s",
        (source_name, extract_date, str(path)),
    )
    if drift:
        execute_values(
            cur,
            """insert into meta.schema_drift (run_id, source_name, extract_date, source_file,
                                                              column_name, change, action, detail) values %s""",
            [(run_id, source_name, extract_date, str(path), d.column, d.change, d.action, d.detail) for d in drift],
        )


def profile_load(cur, source: Source, load_id: int, rows: int, sample_rows: int) -> None:
    """Row count, null rate and distinct count per column of one load.

    Null counts are exact. Distinct counts are exact up to 2 x sample_rows rows;
    above that they are estimated from a systematic sample of every k-th line
    with the Haas-Stokes (Duj1) estimator that PostgreSQL's ANALYZE uses, and
    the profile row says so (distinct_is_estimate).
    """
    rows_table = sql.Identifier("bronze", f"{source.bronze_table}_rows")
    step = max(1, rows // sample_rows) if rows > 2 * sample_rows else 1
    cur.execute(
        sql.SQL(
            "create temp table profile_sample on commit drop as select {} from {} "
            "where _load_id = %s and _line_number %% %s = 0"
        ).format(sql.SQL(", ").join(sql.Identifier(c) for c in source.columns), rows_table),
        (load_id, step),
    )
    null_counts = sql.SQL(", ").join(
        sql.SQL("count(*) filter (where {} is null)").format(sql.Identifier(c)) for c in source.columns
    )
    cur.execute(sql.SQL("select {} from {} where _load_id = %s").format(null_counts, rows_table), (load_id,))
    nulls = cur.fetchone()
    values = []
    for ordinal, column in enumerate(source.columns):
        cur.execute(
            sql.SQL(
                "select count(*), count(*) filter (where seen = 1), coalesce(sum(seen), 0) "
                "from (select count(*) as seen from profile_sample where {col} is not null group by {col}) as per_value"
            ).format(col=sql.Identifier(column))
        )
        distinct, singletons, sampled = cur.fetchone()
        non_null = rows - nulls[ordinal]
        if step > 1 and sampled:
            # Duj1: n*d / (n - f1 + f1*n/N)
            estimate = sampled * distinct / (sampled - singletons + singletons * sampled / non_null)
            distinct = min(non_null, round(estimate))
        values.append(
            (
                load_id,
                column,
                ordinal + 1,
                rows,
                nulls[ordinal],
                (nulls[ordinal] / rows) if rows else 0,
                distinct,
                step > 1,
            )
        )
    cur.execute("drop table profile_sample")
    execute_values(
        cur,
        """insert into meta.column_profiles (load_id, column_name, ordinal, row_count, null_count, null_rate,
                                             distinct_count, distinct_is_estimate)
           values %s""",
        values,
    )


class CrmCustomersRaw(BronzeTask):
    source = CRM_CUSTOMERS


class ErpProductsRaw(BronzeTask):
    source = ERP_PRODUCTS


class ErpSalesRaw(BronzeTask):
    source = ERP_SALES
