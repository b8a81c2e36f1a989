-- The newest run (by start) and the newest success, as Unix seconds. A run that
-- is still going reports its duration so far. One row, nulls when no run exists.
with last_run as (
    select
        status,
        extract(epoch from started_at)::float8 as started_seconds,
        extract(epoch from coalesce(finished_at, clock_timestamp()) - started_at)::float8 as duration_seconds
    from meta.pipeline_runs
    order by started_at desc
    limit 1
),

last_success as (
    select extract(epoch from max(finished_at))::float8 as finished_seconds
    from meta.pipeline_runs
    where status = 'success'
),

final as (
    select
        last_run.status,
        last_run.started_seconds,
        last_run.duration_seconds,
        last_success.finished_seconds as last_success_seconds
    from last_success
    left join last_run on true
)

select * from final
