-- What the run history can be filtered by: its date span, triggers and statuses.
select
    min(run_date) as first_run_date,
    max(run_date) as last_run_date,
    coalesce(array_agg(distinct trigger), '{{}}') as triggers,
    coalesce(array_agg(distinct status), '{{}}') as statuses
from meta.pipeline_runs
