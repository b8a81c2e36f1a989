-- The run quality score of a run, or, when the run did not compute one (its
-- gate was already complete), the latest score of its date.
select
    run_id,
    score::float8 as score,
    rows_checked,
    run_id = %(run_id)s as is_this_run
from meta.quality_scores
where table_name = '*'
    and dimension = 'overall'
    and run_date = %(run_date)s
order by run_id = %(run_id)s desc, computed_at desc
limit 1
