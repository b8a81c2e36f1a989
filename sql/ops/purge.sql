-- Retention: remove what belongs to extract dates before %(cutoff)s.
-- Bronze loads, quarantine rows and run metadata only; silver, gold and the
-- completion markers are never touched. One statement: all of it or none.
with

old_loads as (
    select load_id from meta.ingested_files where extract_date < %(cutoff)s
),

old_runs as (
    select run_id from meta.pipeline_runs where run_date < %(cutoff)s and status <> 'running'
),

-- One delete per bronze rows table of the registry (pipeline/registry.py):
-- "<name> as (delete from <table> where _load_id in (select load_id from old_loads) returning 1)".
{bronze_deletes},

quarantine as (
    delete from silver.quarantine where extract_date < %(cutoff)s
    returning 1
),

-- Column profiles go with their loads (on delete cascade).
ingested_files as (
    delete from meta.ingested_files where load_id in (select load_id from old_loads)
    returning 1
),

quality_results as (
    delete from meta.quality_results where run_date < %(cutoff)s
    returning 1
),

sla_misses as (
    delete from meta.sla_misses where run_date < %(cutoff)s
    returning 1
),

alerts as (
    delete from meta.alerts where run_date < %(cutoff)s
    returning 1
),

-- Lineage rows go with their task runs (on delete cascade).
task_runs as (
    delete from meta.task_runs where run_id in (select run_id from old_runs)
    returning 1
),

pipeline_runs as (
    delete from meta.pipeline_runs where run_id in (select run_id from old_runs)
    returning 1
),

final as (
    -- "select '<table>', count(*) from <name> union all" per bronze rows table
    {bronze_counts}
    select 'silver.quarantine' as table_name, count(*) as rows_deleted from quarantine
    union all select 'meta.ingested_files', count(*) from ingested_files
    union all select 'meta.quality_results', count(*) from quality_results
    union all select 'meta.sla_misses', count(*) from sla_misses
    union all select 'meta.alerts', count(*) from alerts
    union all select 'meta.task_runs', count(*) from task_runs
    union all select 'meta.pipeline_runs', count(*) from pipeline_runs
)

select * from final
