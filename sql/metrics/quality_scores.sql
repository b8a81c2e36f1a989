-- The newest quality score of every table and dimension (table_name '*' is the
-- run's): of any run, or of the run given as run_id.
with scores as (
    select table_name, dimension, score, computed_at, run_id from meta.quality_scores
    where %(run_id)s::text is null or run_id = %(run_id)s
),

final as (
    select distinct on (table_name, dimension)
        table_name,
        dimension,
        score::float8
    from scores
    where score is not null
    order by table_name, dimension, computed_at desc, run_id desc
)

select * from final
