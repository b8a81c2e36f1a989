-- The latest attempt of each task family for each extract date (the date x task grid of the Runs page).
with attempts as (
    select
        task_run_id,
        run_id,
        task_family,
        status,
        error,
        (params ->> 'date')::date as run_date,
        started_at,
        finished_at
    from meta.task_runs
    where params ? 'date'
),

latest as (
    select distinct on (run_date, task_family) *
    from attempts
    order by run_date, task_family, started_at desc, task_run_id desc
),

final as (
    select
        run_id,
        task_family,
        status,
        case when %(masked)s then console.mask_text(btrim(error, E' \n')) else btrim(error, E' \n') end as error,
        run_date,
        started_at,
        finished_at
    from latest
)

select * from final
order by run_date, task_family
