"""A PostgreSQL table or query as a source, extracted incrementally by a watermark column.

sources.toml::

    [sources.crm_customers]
    kind = "postgres"
    [sources.crm_customers.extract]
    dsn_env = "CRM_DATABASE_URL"      # the environment variable holding the DSN (never the DSN itself)
    table = "public.customers"        # or query = "select ... from ..."
    watermark_column = "updated_at"   # a timestamp, or an increasing number (an id)
    lookback = "10 minutes"           # or a number for a numeric watermark
    key_snapshot_every = 1            # a full key snapshot each N extracts (0 or absent: never)

One read-only REPEATABLE READ transaction on the source streams
``COPY (select * ... where watermark > high_water - lookback order by watermark)
TO STDOUT (FORMAT csv, HEADER)`` into the work file, takes the new high-water
mark (the greatest watermark extracted) and, when due, every business key, all
from the same snapshot. The bronze task loads the file like a landing file; the
new mark and the keys are written by `on_commit`, inside the load's
transaction, so a crash before the commit extracts the same rows again.

The look-back catches rows committed late with a watermark below the mark
already taken (a long transaction that set updated_at when it began); the rows
it extracts again are deduplicated by silver like any re-sent version.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pipeline.core import db
from pipeline.core.sources import SourceConfigError, SourceSettings
from pipeline.extractors import Extracted

EXTRACT_KEYS = {"dsn_env", "table", "query", "watermark_column", "lookback", "key_snapshot_every", "key_column"}
TIMESTAMP_TYPES = {"timestamp with time zone", "timestamp without time zone", "date"}
NUMBER_TYPES = {"smallint", "integer", "bigint", "numeric"}
# The SQL each accepted watermark type is cast to (a constant: the catalog's name never reaches the query).
WATERMARK_CASTS = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "date": "date",
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "numeric": "numeric",
}
SOURCE_CONNECT_TIMEOUT_SECONDS = 10
SOURCE_STATEMENT_TIMEOUT_MS = 2 * 3600 * 1000


class SourceExtractError(RuntimeError):
    """The source can not be extracted as configured: its DSN, its server, its table or a column."""

    retryable = False
    hint = (
        "check the source's [sources.<name>.extract] settings in sources.toml and the environment variable "
        "named by dsn_env, then run the date again; nothing was loaded and the watermark did not move"
    )

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        if hint:
            self.hint = hint


@dataclass(frozen=True)
class PostgresExtract:
    """A source's [sources.<name>.extract] settings, checked."""

    source_name: str
    dsn_env: str
    table: str | None
    query: str | None
    watermark_column: str
    lookback: str | int | float
    key_snapshot_every: int
    key_column: str

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> PostgresExtract:
        raw = settings.extract
        where = f"[sources.{settings.source.name}.extract]"
        unknown = sorted(set(raw) - EXTRACT_KEYS)
        if unknown:
            raise SourceConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(EXTRACT_KEYS))}"
            )
        for key in ("dsn_env", "watermark_column"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise SourceConfigError(
                    f"{where}: {key} is required (a postgres source: dsn_env names the "
                    "environment variable holding the DSN, watermark_column the column "
                    "that grows with each change)"
                )
        if ("table" in raw) == ("query" in raw):
            raise SourceConfigError(f'{where}: set exactly one of table ("schema.table") or query (a select)')
        table = raw.get("table")
        if table is not None and not re.fullmatch(r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?", str(table)):
            raise SourceConfigError(
                f"{where}: table {table!r} must be a plain name or schema.name; for anything else write a query"
            )
        lookback = raw.get("lookback", 0)
        if isinstance(lookback, bool) or not isinstance(lookback, str | int | float):
            raise SourceConfigError(
                f'{where}: lookback must be an interval ("10 minutes") for a timestamp '
                "watermark or a number for a numeric one"
            )
        every = raw.get("key_snapshot_every", 0)
        if isinstance(every, bool):
            every = 1 if every else 0
        if not isinstance(every, int) or every < 0:
            raise SourceConfigError(
                f"{where}: key_snapshot_every must be a whole number of extracts (1: every extract, 0: never)"
            )
        # The business key as the source names it: the rename map goes file column -> contract column.
        source_key = next(
            (name for name, target in settings.rename.items() if target == settings.source.business_key),
            settings.source.business_key,
        )
        return cls(
            source_name=settings.source.name,
            dsn_env=raw["dsn_env"].strip(),
            table=table,
            query=raw.get("query"),
            watermark_column=raw["watermark_column"].strip(),
            lookback=lookback,
            key_snapshot_every=every,
            key_column=str(raw.get("key_column", source_key)),
        )

    def relation(self) -> sql.Composable:
        if self.table:
            return sql.Identifier(*self.table.split("."))
        return sql.SQL("({})").format(sql.SQL(str(self.query).strip().rstrip(";")))

    @property
    def label(self) -> str:
        return self.table or "query"


@dataclass(frozen=True)
class Watermark:
    """The source's latest committed extract, from meta.source_watermarks."""

    high_watermark: str | None
    extracts_since_snapshot: int | None  # None: no key snapshot was ever taken


def current_watermark(source_name: str, warehouse: db.Warehouse) -> Watermark:
    with warehouse.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "select high_watermark from meta.source_watermarks where source_name = %s order by load_id desc limit 1",
            (source_name,),
        )
        row = cur.fetchone()
        cur.execute(
            """select count(*) filter (where load_id > coalesce(last_snapshot, 0)), bool_or(has_key_snapshot)
                       from meta.source_watermarks,
                            lateral (select max(load_id) as last_snapshot from meta.source_watermarks
                                     where source_name = %(source)s and has_key_snapshot) as snapshots
                       where source_name = %(source)s""",
            {"source": source_name},
        )
        since, any_snapshot = cur.fetchone()
    return Watermark(high_watermark=row[0] if row else None, extracts_since_snapshot=since if any_snapshot else None)


def snapshot_due(config: PostgresExtract, mark: Watermark) -> bool:
    """Each key_snapshot_every-th extract takes one, the first extract included."""
    if config.key_snapshot_every <= 0:
        return False
    return mark.extracts_since_snapshot is None or mark.extracts_since_snapshot + 1 >= config.key_snapshot_every


def _source_dsn(config: PostgresExtract) -> str:
    value = os.environ.get(config.dsn_env, "").strip()
    if not value:
        raise SourceExtractError(
            f"{config.source_name}: the environment variable {config.dsn_env} (sources.toml dsn_env) is not set; "
            "it must hold the source database's DSN",
            hint=f"export {config.dsn_env}=postgresql://user@host/db (or a libpq 'host=... dbname=...' string) in "
            "the environment of the run (cron, the compose service), then run the date again",
        )
    return db.psycopg2_dsn(value) if "://" in value else value


def _connect(config: PostgresExtract, dsn: str):
    try:
        conn = psycopg2.connect(
            dsn,
            connect_timeout=SOURCE_CONNECT_TIMEOUT_SECONDS,
            application_name=f"metalayer extract {config.source_name}",
            options=f"-c statement_timeout={SOURCE_STATEMENT_TIMEOUT_MS} -c TimeZone=UTC -c DateStyle=ISO",
        )
    except psycopg2.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SourceExtractError(
            f"{config.source_name}: cannot connect to the source database named by {config.dsn_env}: {reason}",
            hint=f"check that the server in {config.dsn_env} is up and reachable from this host and that its "
            "user may log in, then run the date again; nothing was loaded",
        ) from None
    conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
    return conn


def _probe(cur, config: PostgresExtract) -> str:
    """The watermark column's type name; raises SourceExtractError for a missing table or column."""
    try:
        cur.execute(sql.SQL("select * from {} as source_rows limit 0").format(config.relation()))
    except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName) as exc:
        raise SourceExtractError(
            f"{config.source_name}: the source has no table {config.label}: {exc.diag.message_primary}"
        ) from None
    except psycopg2.ProgrammingError as exc:
        raise SourceExtractError(
            f"{config.source_name}: the source query fails: {exc.diag.message_primary or exc}"
        ) from None
    columns = {column.name: column.type_code for column in cur.description}
    missing = [c for c in (config.watermark_column, config.key_column) if c not in columns]
    if missing:
        raise SourceExtractError(
            f"{config.source_name}: {config.label} has no column(s) {', '.join(missing)} (watermark_column / "
            f"business key); its columns are {', '.join(columns)}",
            hint="name an existing column in watermark_column (or key_column, or map the key through "
            f"[sources.{config.source_name}.rename]), then run the date again",
        )
    cur.execute("select format_type(%s, null)", (columns[config.watermark_column],))
    return cur.fetchone()[0]


def extract(settings: SourceSettings, extract_date: date, workdir: Path, warehouse: db.Warehouse) -> Extracted:
    config = PostgresExtract.from_settings(settings)
    dsn = _source_dsn(config)
    mark = current_watermark(config.source_name, warehouse)
    take_snapshot = snapshot_due(config, mark)
    path = workdir / f"{settings.source.file_stem}.csv"
    keys_path = workdir / f"{settings.source.file_stem}.keys.csv"
    column = sql.Identifier(config.watermark_column)
    conn = _connect(config, dsn)
    try:
        with conn.cursor() as cur:
            type_name = _probe(cur, config)
            if type_name in TIMESTAMP_TYPES:
                kind, lookback = "timestamp", sql.SQL("%(lookback)s::interval")
            elif type_name in NUMBER_TYPES:
                kind, lookback = "number", sql.SQL("%(lookback)s::numeric")
            else:
                raise SourceExtractError(
                    f"{config.source_name}: watermark_column {config.watermark_column} is "
                    f"{type_name}; it must be a timestamp, a date or a number"
                )
            params = {"high_water": mark.high_watermark, "lookback": str(config.lookback)}
            if mark.high_watermark is None:
                where = sql.SQL("true")
            else:
                where = sql.SQL("{column} > cast(%(high_water)s as {type}) - {lookback}").format(
                    column=column, type=sql.SQL(WATERMARK_CASTS[type_name]), lookback=lookback
                )
            try:
                cur.execute(
                    sql.SQL("select (cast(%(high_water)s as {type}) - {lookback})::text").format(
                        type=sql.SQL(WATERMARK_CASTS[type_name]), lookback=lookback
                    ),
                    params,
                )
            except psycopg2.DataError as exc:
                raise SourceExtractError(
                    f"{config.source_name}: lookback {config.lookback!r} does not fit a "
                    f"{kind} watermark: {exc.diag.message_primary}"
                ) from None
            low_watermark = cur.fetchone()[0]
            selected = sql.SQL("select * from {relation} as source_rows where {where}").format(
                relation=config.relation(), where=where
            )
            copy = sql.SQL("copy ({selected} order by {column}) to stdout with (format csv, header)").format(
                selected=selected, column=column
            )
            with path.open("wb") as out:
                cur.copy_expert(cur.mogrify(copy, params).decode(), out)
            copied = cur.rowcount
            # The same snapshot: the greatest watermark among exactly the rows just copied.
            lag = (
                sql.SQL("extract(epoch from now() - max({column})::timestamptz)")
                if kind == "timestamp"
                else sql.SQL("null::numeric")
            ).format(column=column)
            cur.execute(
                sql.SQL("select count(*), max({column})::text, now(), {lag} from ({selected}) as extracted").format(
                    column=column, lag=lag, selected=selected
                ),
                params,
            )
            counted, high_watermark, extracted_at, lag_seconds = cur.fetchone()
            if copied not in (-1, counted):
                raise RuntimeError(f"{config.source_name}: COPY wrote {copied} rows but the snapshot holds {counted}")
            keys = None
            if take_snapshot:
                key = sql.Identifier(config.key_column)
                with keys_path.open("wb") as out:
                    cur.copy_expert(
                        sql.SQL(
                            "copy (select distinct btrim({key}::text) from {relation} as source_rows "
                            "where nullif(btrim({key}::text), '') is not null) to stdout "
                            "with (format csv)"
                        )
                        .format(key=key, relation=config.relation())
                        .as_string(cur),
                        out,
                    )
                keys = cur.rowcount
        conn.rollback()  # read only: nothing to keep
    finally:
        conn.close()

    record = {
        "source_name": config.source_name,
        "watermark_column": config.watermark_column,
        "watermark_kind": kind,
        "low_watermark": low_watermark,
        "high_watermark": high_watermark or mark.high_watermark,
        "rows_extracted": counted,
        "has_key_snapshot": take_snapshot,
        "keys_in_snapshot": keys,
        "extract_date": extract_date,
        "extracted_at": extracted_at,
        "lag_seconds": lag_seconds if high_watermark else None,
    }

    def on_commit(cur, load_id: int) -> None:
        cur.execute(
            """insert into meta.source_watermarks (load_id, source_name, watermark_column, watermark_kind,
                   low_watermark, high_watermark, rows_extracted, has_key_snapshot, keys_in_snapshot, extract_date,
                   extracted_at, lag_seconds)
               values (%(load_id)s, %(source_name)s, %(watermark_column)s, %(watermark_kind)s, %(low_watermark)s,
                   %(high_watermark)s, %(rows_extracted)s, %(has_key_snapshot)s, %(keys_in_snapshot)s,
                   %(extract_date)s, %(extracted_at)s, %(lag_seconds)s)""",
            {**record, "load_id": load_id},
        )
        if take_snapshot:
            cur.execute("create temp table snapshot_keys (business_key text) on commit drop")
            with keys_path.open("rb") as keys_file:
                cur.copy_expert("copy snapshot_keys from stdin with (format csv)", keys_file)
            cur.execute(
                "insert into bronze.source_key_snapshots (load_id, business_key) "
                "select %s, business_key from snapshot_keys",
                (load_id,),
            )
            if cur.rowcount != keys:
                raise RuntimeError(f"{config.source_name}: {keys} keys extracted but {cur.rowcount} stored")
            cur.execute("drop table snapshot_keys")

    where_text = "all rows" if low_watermark is None else f"{config.watermark_column} > {low_watermark}"
    return Extracted(
        path=path,
        on_commit=on_commit,
        description=f"postgres {config.dsn_env}: {config.label} where {where_text} ({counted} rows"
        + (f", {keys} keys" if take_snapshot else "")
        + ")",
    )
