-- The base tables of the bronze, silver and gold schemas; pipeline/operations/metrics.py
-- counts the rows of each in one statement.
with layer_tables as (
    select
        table_schema,
        table_name
    from information_schema.tables
    where table_schema in ('bronze', 'silver', 'gold')
        and table_type = 'BASE TABLE'
),

final as (
    select * from layer_tables order by table_schema, table_name
)

select * from final
