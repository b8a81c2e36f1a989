-- Runs that evaluated quality rules, newest first, with how many rules failed rows.
select
    results.run_id,
    count(*) filter (where results.rows_failed > 0) as failing_rules,
    max(results.run_date) as run_date,
    max(results.checked_at) as checked_at
from meta.quality_results as results
group by results.run_id
order by max(results.checked_at) desc
limit 200
