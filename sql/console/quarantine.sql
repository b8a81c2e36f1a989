-- Quarantined rows matching the filters (an empty list matches everything), newest
-- first; matching_rows counts them all, whatever the limit (null: no limit). The
-- filters and the count read no masked column, so only the rows shown are masked.
with matching as (
    select
        quarantine_id,
        quarantined_at
    from {quarantine}
    where (cardinality(%(tables)s::text[]) = 0 or source_table = any(%(tables)s::text[]))
        and (cardinality(%(rules)s::text[]) = 0 or rule_name = any(%(rules)s::text[]))
        and (cardinality(%(runs)s::text[]) = 0 or run_id = any(%(runs)s::text[]))
),

shown as (
    select
        quarantine_id,
        count(*) over () as matching_rows
    from matching
    order by quarantined_at desc, quarantine_id desc
    limit %(limit)s
),

final as (
    select
        quarantine.quarantine_id,
        quarantine.run_id,
        quarantine.stage,
        quarantine.source_table,
        quarantine.source_file,
        quarantine.line_number,
        quarantine.business_key,
        quarantine.rule_name,
        quarantine.reason,
        quarantine.record::text as record,
        shown.matching_rows,
        quarantine.extract_date,
        quarantine.quarantined_at
    from shown
    inner join {quarantine} as quarantine
        on shown.quarantine_id = quarantine.quarantine_id
)

select * from final
order by quarantined_at desc, quarantine_id desc
