-- Runs by trigger and status; finished runs only count towards the totals.
with runs as (
    select trigger, status from meta.pipeline_runs
),

final as (
    select
        trigger,
        status,
        count(*)::float8 as runs
    from runs
    group by trigger, status
)

select * from final
