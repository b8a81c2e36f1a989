-- The tasks of a run in start order: timing, rows in and out, errors.
select
    task_family,
    task_id,
    target_table,
    status,
    case when %(masked)s then console.mask_text(message) else message end as message,
    case when %(masked)s then console.mask_text(error) else error end as error,
    rows_in,
    rows_out,
    rows_rejected,
    (to_jsonb(task_runs) ->> 'rows_duplicate')::bigint as rows_duplicate,
    extract(epoch from coalesce(finished_at, clock_timestamp()) - started_at)::float8 as seconds,
    started_at,
    coalesce(finished_at, clock_timestamp()) as ended_at,
    finished_at
from meta.task_runs
where run_id = %(run_id)s
order by started_at, task_run_id
