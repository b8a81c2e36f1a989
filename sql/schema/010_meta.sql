-- Luigi completion markers (luigi.contrib.postgres.PostgresTarget's layout).
-- A task inserts its marker in the same transaction as its data.
create table if not exists meta.table_updates (
    update_id text primary key,
    target_table text,
    inserted timestamp default now()
);

create table if not exists meta.pipeline_runs (
    run_id text primary key,
    run_date date not null,
    trigger text not null check (trigger in ('cli', 'cron', 'console', 'backfill', 'test')),
    status text not null check (status in ('running', 'success', 'failed')),
    landing_dir text,
    workers integer,
    scheduler text,
    host text,
    pid integer,
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
alter table meta.pipeline_runs add column if not exists log_file text;
create index if not exists pipeline_runs_run_date_idx on meta.pipeline_runs (run_date, started_at desc);

create table if not exists meta.task_runs (
    task_run_id bigint generated always as identity primary key,
    run_id text not null,
    task_family text not null,
    task_id text not null,
    target_table text,
    params jsonb not null default '{}',
    status text not null check (status in ('running', 'success', 'failed', 'skipped')),
    message text,
    rows_in bigint,
    rows_out bigint,
    rows_rejected bigint,
    phase_seconds jsonb,
    error text,
    host text,
    pid integer,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
-- Columns added after the first release; create table if not exists leaves old tables as they were.
alter table meta.task_runs add column if not exists phase_seconds jsonb;
create index if not exists task_runs_run_id_idx on meta.task_runs (run_id);
create index if not exists task_runs_task_id_idx on meta.task_runs (task_id, started_at desc);

-- One row per landing file loaded into bronze. A file whose sha256 was already
-- loaded for the same source is not loaded again.
create table if not exists meta.ingested_files (
    load_id bigint generated always as identity primary key,
    run_id text not null,
    source_name text not null,
    extract_date date not null,
    source_file text not null,
    file_sha256 text not null,
    file_bytes bigint not null,
    physical_lines bigint,
    records bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    ingested_at timestamptz not null default now(),
    -- The same file for the same date is loaded once; an identical file on another
    -- date (an unchanged catalog re-sent) is that date's extract and is loaded.
    unique (source_name, file_sha256, extract_date)
);
alter table meta.ingested_files drop constraint if exists ingested_files_source_name_file_sha256_key;
create index if not exists ingested_files_date_idx on meta.ingested_files (source_name, extract_date);

-- Profile of each load: one row per column.
create table if not exists meta.column_profiles (
    load_id bigint not null references meta.ingested_files (load_id) on delete cascade,
    column_name text not null,
    ordinal integer not null,
    row_count bigint not null,
    null_count bigint not null,
    null_rate numeric(7, 6) not null,
    distinct_count bigint not null,
    distinct_is_estimate boolean not null default false,
    profiled_at timestamptz not null default now(),
    primary key (load_id, column_name)
);

-- Schema drift: a landing file's header differing from its source's contract
-- (sources.toml). One row per column that differs; `action` says what the load
-- did about it: kept (in the bronze `_extra` jsonb), ignored, empty (an absent
-- optional column loads as empty), or failed (the file
-- was refused: a required column is missing or extra columns are refused).
create table if not exists meta.schema_drift (
    drift_id bigint generated always as identity primary key,
    run_id text not null,
    source_name text not null,
    extract_date date not null,
    source_file text not null,
    column_name text not null,
    change text not null check (change in ('added', 'missing', 'renamed')),
    action text not null check (action in ('kept', 'ignored', 'failed', 'empty')),
    detail text,
    detected_at timestamptz not null default now()
);
create index if not exists schema_drift_date_idx on meta.schema_drift (extract_date, source_name);

-- Per run and extract date: a run that chains to an earlier date (the first run of
-- 2026-11-21 also runs 2026-11-20's silver) checks both.
create table if not exists meta.quality_results (
    run_id text not null,
    run_date date not null,
    table_name text not null,
    rule_name text not null,
    dimension text not null,
    severity text not null,
    rows_checked bigint not null,
    rows_failed bigint not null,
    pass_rate numeric(7, 6),
    checked_at timestamptz not null default now(),
    primary key (run_id, run_date, table_name, rule_name)
);
-- Tables made before the key held the date get it.
do $$
begin
    if not exists (
        select 1 from information_schema.key_column_usage
        where constraint_schema = 'meta' and constraint_name = 'quality_results_pkey' and column_name = 'run_date'
    ) then
        alter table meta.quality_results alter column run_date set not null,
            drop constraint quality_results_pkey, add primary key (run_id, run_date, table_name, rule_name);
    end if;
end
$$;

create table if not exists meta.sla_misses (
    sla_miss_id bigint generated always as identity primary key,
    run_id text,
    run_date date,
    task_family text,
    expected_by timestamptz,
    detected_at timestamptz not null default now(),
    message text
);

create index if not exists sla_misses_run_idx on meta.sla_misses (run_id);
alter table meta.sla_misses add column if not exists layer text;
alter table meta.sla_misses add column if not exists threshold_minutes numeric;

-- One row per alert sent (or attempted) through each channel.
create table if not exists meta.alerts (
    alert_id bigint generated always as identity primary key,
    run_id text,
    run_date date,
    kind text not null check (kind in ('run_failed', 'sla_missed', 'quality_below_threshold')),
    channel text not null check (channel in ('email', 'webhook')),
    subject text not null,
    delivered boolean not null,
    error text,
    sent_at timestamptz not null default now()
);
create index if not exists alerts_run_idx on meta.alerts (run_id);

-- Lineage per task run, written in the task's transaction (pipeline/base.py): what
-- the task read (a table; a landing file as file:<path>; another input by its Luigi
-- task id) and the table it wrote. A task that needs its own table's previous date
-- reads it: upstream = downstream. Rows go with their task run (on delete cascade).
-- The first releases had a meta.lineage of (upstream, downstream) that nothing
-- wrote: it is replaced.
do $$
begin
    if to_regclass('meta.lineage') is not null and not exists (
        select 1 from information_schema.columns
        where table_schema = 'meta' and table_name = 'lineage' and column_name = 'task_run_id'
    ) then
        drop table meta.lineage;
    end if;
end $$;

create table if not exists meta.lineage (
    task_run_id bigint not null references meta.task_runs (task_run_id) on delete cascade,
    run_id text not null,
    run_date date not null,
    task_family text not null,
    upstream text not null,
    downstream text not null,
    primary key (task_run_id, upstream, downstream)
);
create index if not exists lineage_downstream_idx on meta.lineage (downstream, run_date);
create index if not exists lineage_upstream_idx on meta.lineage (upstream, run_date);

-- Checksums of the schema files applied (pipeline/core/db.py): processes skip the
-- bootstrap when theirs is here, so starting a process never takes DDL locks.
create table if not exists meta.schema_versions (
    checksum text primary key,
    applied_at timestamptz not null default now()
);

-- Per run, extract date and silver table: the date's input lines (records of its
-- landing files) and how many ended in quarantine: broken lines bronze rejected
-- plus rows silver's drop rules removed (exact duplicates and superseded versions
-- are not loss). The quality gate fails the run when quarantined_share exceeds
-- max_share (luigi.cfg [quality] max_quarantined_share), whatever the run score.
create table if not exists meta.quarantined_shares (
    run_id text not null,
    table_name text not null,
    lines_in bigint not null,
    bronze_rejected bigint not null,
    silver_quarantined bigint not null,
    quarantined_share numeric(7, 6),  -- null when the date has no input lines
    max_share numeric(7, 6) not null,
    is_breach boolean not null,
    run_date date not null,
    computed_at timestamptz not null default now(),
    primary key (run_id, run_date, table_name)
);
create index if not exists quarantined_shares_date_idx on meta.quarantined_shares (run_date, table_name);
