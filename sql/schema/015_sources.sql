-- Sources that are not landing files (sources.toml kind = "postgres"; see
-- pipeline/extractors/postgres.py): the high-water mark of each extract and the
-- key snapshots that tell deletes.

-- One row per committed extract of a database source, written in the bronze
-- load's transaction: a crash before the commit leaves the previous row the
-- latest, so the next attempt extracts the same rows again. The source's
-- current high-water mark is its latest row's (greatest load_id).
create table if not exists meta.source_watermarks (
    load_id bigint primary key references meta.ingested_files (load_id) on delete cascade,
    source_name text not null,
    watermark_column text not null,
    watermark_kind text not null check (watermark_kind in ('timestamp', 'number')),
    -- rows extracted had watermark > low_watermark (null: a full extract)
    low_watermark text,
    -- the greatest watermark extracted (the previous one when nothing was)
    high_watermark text,
    rows_extracted bigint not null,
    has_key_snapshot boolean not null,
    keys_in_snapshot bigint,
    extract_date date not null,
    extracted_at timestamptz not null,  -- the source's clock at the extract's snapshot
    lag_seconds numeric  -- extracted_at - high_watermark, for a timestamp watermark
);
create index if not exists source_watermarks_source_idx on meta.source_watermarks (source_name, load_id desc);

-- Every business key of a source at the extract's snapshot (sources.toml
-- key_snapshot_every): silver soft-deletes the keys absent from the latest one.
create table if not exists bronze.source_key_snapshots (
    load_id bigint not null references meta.ingested_files (load_id) on delete cascade,
    business_key text not null
);
create index if not exists source_key_snapshots_load_idx on bronze.source_key_snapshots (load_id, business_key);
