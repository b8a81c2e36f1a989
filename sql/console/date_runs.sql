-- The latest run of each extract date: its status, error, landing dir and timing.
with latest as (
    select distinct on (run_date) *
    from meta.pipeline_runs
    order by run_date, started_at desc
),

final as (
    select
        run_id,
        trigger,
        status,
        landing_dir,
        case when %(masked)s then console.mask_text(btrim(error, E' \n')) else btrim(error, E' \n') end as error,
        run_date,
        started_at,
        finished_at
    from latest
)

select * from final
order by run_date
