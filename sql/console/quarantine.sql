-- Quarantined rows matching the filters (an empty list matches everything), newest
-- first; matching_rows counts them all, whatever the limit (null: no limit).
select
    quarantine_id,
    run_id,
    stage,
    source_table,
    source_file,
    line_number,
    business_key,
    rule_name,
    reason,
    record::text as record,
    count(*) over () as matching_rows,
    extract_date,
    quarantined_at
from {quarantine}
where (cardinality(%(tables)s::text[]) = 0 or source_table = any(%(tables)s::text[]))
    and (cardinality(%(rules)s::text[]) = 0 or rule_name = any(%(rules)s::text[]))
    and (cardinality(%(runs)s::text[]) = 0 or run_id = any(%(runs)s::text[]))
order by quarantined_at desc, quarantine_id desc
limit %(limit)s
