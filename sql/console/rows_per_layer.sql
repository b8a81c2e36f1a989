-- Rows per layer and table: bronze as loaded over every extract, silver and
-- gold as they stand now.
with bronze as (
    select
        'bronze' as layer,
        'bronze.' || source_name || '_raw' as table_name,
        sum(rows_loaded)::bigint as row_count
    from meta.ingested_files
    group by source_name
),

-- %(tables)s: the silver and gold tables users read (pipeline/registry.py).
current_tables as (
    select
        split_part(counted.table_name, '.', 1) as layer,
        counted.table_name,
        counted.row_count
    from console.table_rows(%(tables)s::text[]) as counted
),

final as (
    select * from bronze
    union all
    select * from current_tables
)

select * from final
order by array_position(array['bronze', 'silver', 'gold'], layer), table_name
