-- One pipeline run: its trigger, status, extract date (midnight UTC) and times as Unix seconds.
with runs as (
    select * from meta.pipeline_runs
    where run_id = %(run_id)s
),

final as (
    select
        trigger,
        status,
        extract(epoch from run_date::timestamp at time zone 'UTC')::float8 as run_date_seconds,
        extract(epoch from started_at)::float8 as started_seconds,
        extract(epoch from finished_at)::float8 as finished_seconds,
        extract(epoch from coalesce(finished_at, clock_timestamp()) - started_at)::float8 as duration_seconds
    from runs
)

select * from final
