-- Quarantined rows grouped by table, file and rule, with the first line numbers and one sample row
-- (masked through {quarantine} like the browser); matching the same filters as sql/console/quarantine.sql.
with matching as (
    select
        quarantine_id,
        source_table,
        source_file,
        rule_name,
        line_number
    from {quarantine}
    where (cardinality(%(tables)s::text[]) = 0 or source_table = any(%(tables)s::text[]))
        and (cardinality(%(rules)s::text[]) = 0 or rule_name = any(%(rules)s::text[]))
        and (cardinality(%(runs)s::text[]) = 0 or run_id = any(%(runs)s::text[]))
),

grouped as (
    select
        source_table,
        source_file,
        rule_name,
        count(*) as quarantined_rows,
        (array_agg(line_number order by line_number) filter (where line_number is not null))[1:5] as sample_lines,
        min(quarantine_id) as sample_id
    from matching
    group by source_table, source_file, rule_name
),

final as (
    select
        grouped.source_table,
        grouped.source_file,
        grouped.rule_name,
        grouped.quarantined_rows,
        array_to_string(grouped.sample_lines, ', ') as sample_lines,
        sample.reason as sample_reason,
        sample.record::text as sample_record
    from grouped
    inner join {quarantine} as sample
        on grouped.sample_id = sample.quarantine_id
)

select * from final
order by quarantined_rows desc, source_table, source_file, rule_name
