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

-- Hashed, not sorted: an ordered array_agg would sort every matching row by its group's long
-- text keys (190 ms for 48K rows); each group's first five lines are picked from its own array.
grouped as (
    select
        source_table,
        source_file,
        rule_name,
        count(*) as quarantined_rows,
        array_agg(line_number) filter (where line_number is not null) as line_numbers,
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
        array_to_string(array(
            select line from unnest(grouped.line_numbers) as line order by line limit 5
        ), ', ') as sample_lines,
        sample.reason as sample_reason,
        sample.record::text as sample_record
    from grouped
    inner join {quarantine} as sample
        on grouped.sample_id = sample.quarantine_id
)

select * from final
order by quarantined_rows desc, source_table, source_file, rule_name
