-- Rows in quarantine by stage, source table and (first) rule broken: all of
-- them, or those the run given as run_id put there.
with quarantine as (
    select stage, source_table, rule_name from silver.quarantine
    where %(run_id)s::text is null or run_id = %(run_id)s
),

final as (
    select
        stage,
        source_table,
        rule_name,
        count(*)::float8 as row_count
    from quarantine
    group by stage, source_table, rule_name
)

select * from final
