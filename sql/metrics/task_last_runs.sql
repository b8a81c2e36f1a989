-- The newest run of every task family, its duration (so far, when still
-- running) and its row counts: in any pipeline run, or in the run given as run_id.
with task_runs as (
    select * from meta.task_runs
    where %(run_id)s::text is null or run_id = %(run_id)s
),

final as (
    select distinct on (task_family)
        task_family,
        status,
        extract(epoch from started_at)::float8 as started_seconds,
        extract(epoch from coalesce(finished_at, clock_timestamp()) - started_at)::float8 as duration_seconds,
        rows_in::float8,
        rows_out::float8,
        rows_rejected::float8,
        rows_duplicate::float8
    from task_runs
    order by task_family, started_at desc, task_run_id desc
)

select * from final
