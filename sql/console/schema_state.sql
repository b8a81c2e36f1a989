-- Whether the warehouse has been bootstrapped (a fresh database has no meta schema yet).
select
    to_regclass('meta.pipeline_runs') is not null as is_bootstrapped,
    to_regclass('gold.business_kpis') is not null as has_gold_tables
