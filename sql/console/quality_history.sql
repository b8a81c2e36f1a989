-- Score per table and dimension for each run date, from the date's latest quality gate.
select distinct on (run_date, table_name, dimension)
    run_id,
    table_name,
    dimension,
    score::float8 as score,
    rows_checked,
    run_date,
    computed_at
from meta.quality_scores
order by run_date, table_name, dimension, computed_at desc
