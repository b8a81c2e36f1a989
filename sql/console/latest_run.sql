-- The most recent run, its duration (to now while it runs) and its task counts.
with latest as (
    select *
    from meta.pipeline_runs
    order by started_at desc
    limit 1
),

tasks as (
    select
        count(*) as tasks,
        count(*) filter (where status in ('success', 'skipped')) as tasks_done,
        count(*) filter (where status = 'failed') as tasks_failed,
        count(*) filter (where status = 'running') as tasks_running
    from meta.task_runs
    where run_id = (select run_id from latest)
),

final as (
    select
        latest.run_id,
        latest.trigger,
        latest.status,
        case when %(masked)s then console.mask_text(latest.error) else latest.error end as error,
        extract(epoch from coalesce(latest.finished_at, clock_timestamp()) - latest.started_at)::float8 as seconds,
        tasks.tasks,
        tasks.tasks_done,
        tasks.tasks_failed,
        tasks.tasks_running,
        latest.run_date,
        latest.started_at,
        latest.finished_at
    from latest
    cross join tasks
)

select * from final
