-- Every input line that does not become a silver row or a recorded duplicate
-- lands here, with the rule it broke and why. Bronze routes structurally
-- broken lines here too (stage = 'bronze').
create table if not exists silver.quarantine (
    quarantine_id bigint generated always as identity primary key,
    run_id text not null,
    stage text not null check (stage in ('bronze', 'silver', 'gold')),
    source_table text not null,
    source_file text,
    line_number bigint,
    load_id bigint,
    extract_date date,
    business_key text,
    rule_name text not null,
    reason text not null,
    record jsonb not null,
    quarantined_at timestamptz not null default now()
);
create index if not exists quarantine_source_idx on silver.quarantine (source_table, rule_name);
create index if not exists quarantine_load_idx on silver.quarantine (load_id);
