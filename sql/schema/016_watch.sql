-- The landing watcher (`metalayer watch`, pipeline/operations/watch.py) starts runs with trigger 'watch'.
alter table meta.pipeline_runs drop constraint if exists pipeline_runs_trigger_check;
alter table meta.pipeline_runs add constraint pipeline_runs_trigger_check
    check (trigger in ('cli', 'cron', 'console', 'backfill', 'test', 'watch'));

-- What the watcher decided for each extract date, so that a date is run once and never twice (across
-- restarts and hosts), and a failed date again only when its folder changes.
create table if not exists meta.watched_dates (
    extract_date date primary key,
    landing_dir text not null,
    -- sha256 of the folder's file names, sizes and modification times when it was run
    folder_fingerprint text not null,
    run_id text,
    status text not null check (status in ('success', 'failed', 'delivered_before')),
    decided_at timestamptz not null default now()
);
