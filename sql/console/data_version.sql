-- Changes whenever a run or a task starts or ends: cached query results are keyed by it.
select
    (select count(*) from meta.pipeline_runs) as runs,
    (select max(greatest(started_at, finished_at)) from meta.pipeline_runs) as runs_changed_at,
    (select max(greatest(started_at, finished_at)) from meta.task_runs) as tasks_changed_at
