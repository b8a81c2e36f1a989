-- A launch cancelled from the console ends its run and its running tasks as 'cancelled'.
alter table meta.pipeline_runs drop constraint if exists pipeline_runs_status_check;
alter table meta.pipeline_runs add constraint pipeline_runs_status_check
    check (status in ('running', 'success', 'failed', 'cancelled'));
alter table meta.task_runs drop constraint if exists task_runs_status_check;
alter table meta.task_runs add constraint task_runs_status_check
    check (status in ('running', 'success', 'failed', 'skipped', 'cancelled'));
