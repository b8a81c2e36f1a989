-- Task runs by family and status.
with task_runs as (
    select task_family, status from meta.task_runs
),

final as (
    select
        task_family,
        status,
        count(*)::float8 as runs
    from task_runs
    group by task_family, status
)

select * from final
