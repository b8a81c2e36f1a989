-- A launch cancelled from the console: its runs (the one run of a run or rerun, else the console runs
-- of its dates started since the launch) that did not succeed, and their running tasks, become cancelled.
with launched_runs as (
    select run_id
    from meta.pipeline_runs
    where status <> 'success'
        and (
            run_id = %(run_id)s
            or (%(run_id)s is null and trigger = 'console' and started_at >= %(since)s
                and run_date between %(start)s and %(end)s)
        )
),

cancelled_tasks as (
    update meta.task_runs
    set status = 'cancelled', error = %(error)s, finished_at = clock_timestamp()
    where run_id in (select run_id from launched_runs)
        and status = 'running'
    returning run_id
),

cancelled_runs as (
    update meta.pipeline_runs
    set status = 'cancelled', error = %(error)s, finished_at = coalesce(finished_at, clock_timestamp())
    where run_id in (select run_id from launched_runs)
    returning run_id
)

select run_id from cancelled_runs
