select
    rule_name,
    count(*)
from stage, unnest(failed_drop || failed_other) as rule_name
where copy_number = 1
    and cardinality(failed_drop) + cardinality(failed_other) > 0
group by rule_name
