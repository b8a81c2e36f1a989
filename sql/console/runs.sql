-- Run history, newest first, filtered by run date, status and trigger.
with task_counts as (
    select
        run_id,
        count(*) as tasks,
        count(*) filter (where status = 'failed') as tasks_failed
    from meta.task_runs
    group by run_id
),

final as (
    select
        runs.run_id,
        runs.trigger,
        runs.status,
        coalesce(task_counts.tasks, 0) as tasks,
        coalesce(task_counts.tasks_failed, 0) as tasks_failed,
        extract(epoch from coalesce(runs.finished_at, clock_timestamp()) - runs.started_at)::float8 as seconds,
        -- The first line: what failed (the rest, what to do, is on the run's detail).
        split_part(
            case when %(masked)s then console.mask_text(btrim(runs.error, E' \n')) else btrim(runs.error, E' \n') end,
            E'\n', 1
        ) as error,
        runs.run_date,
        runs.started_at,
        runs.finished_at
    from meta.pipeline_runs as runs
    left join task_counts
        on runs.run_id = task_counts.run_id
    where runs.run_date between %(start)s and %(end)s
        and runs.status = any(%(statuses)s)
        and runs.trigger = any(%(triggers)s)
)

select * from final
order by started_at desc
limit %(limit)s
