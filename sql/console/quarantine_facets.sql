-- The tables, rules and runs the quarantine can be filtered by, with their row counts.
select
    source_table,
    rule_name,
    run_id,
    count(*) as quarantined,
    max(quarantined_at) as last_quarantined_at
from {quarantine}
group by source_table, rule_name, run_id
order by last_quarantined_at desc
