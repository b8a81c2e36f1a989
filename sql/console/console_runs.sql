-- Runs the console launched since a moment, for the dates of a launch (a backfill has one run per date).
select
    run_id,
    status,
    case when %(masked)s then console.mask_text(error) else error end as error,
    run_date,
    started_at,
    finished_at
from meta.pipeline_runs
where trigger = 'console'
    and started_at >= %(since)s
    and run_date between %(start)s and %(end)s
order by run_date, started_at
