-- Dates in a range with a run recorded as running (the run lock says whether it really is).
select distinct run_date
from meta.pipeline_runs
where status = 'running'
    and run_date between %(start)s and %(end)s
order by run_date
