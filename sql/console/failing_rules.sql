-- The rules of a run that failed rows, worst pass rate first.
select
    table_name,
    rule_name,
    dimension,
    severity,
    rows_checked,
    rows_failed,
    pass_rate::float8 as pass_rate
from meta.quality_results
where run_id = %(run_id)s
    and rows_failed > 0
order by pass_rate, table_name, rule_name
