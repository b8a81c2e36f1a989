-- One run, with its log file (read from the row as json: older tables lack the column).
select
    run_id,
    trigger,
    status,
    case when %(masked)s then console.mask_text(error) else error end as error,
    to_jsonb(pipeline_runs) ->> 'log_file' as log_file,
    landing_dir,
    host,
    pid,
    workers,
    extract(epoch from coalesce(finished_at, clock_timestamp()) - started_at)::float8 as seconds,
    run_date,
    started_at,
    finished_at
from meta.pipeline_runs
where run_id = %(run_id)s
