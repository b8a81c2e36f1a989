-- Each task family's latest status, for the lineage graph.
select distinct on (task_family)
    task_family,
    status,
    run_id,
    started_at,
    finished_at
from meta.task_runs
order by task_family, started_at desc
