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

current_tables as (
    select 'silver' as layer, 'silver.customers' as table_name, (select count(*) from silver.customers) as row_count
    union all
    select 'silver', 'silver.products', (select count(*) from silver.products)
    union all
    select 'silver', 'silver.sales', (select count(*) from silver.sales)
    union all
    select 'silver', 'silver.quarantine', (select count(*) from {quarantine})
    union all
    select 'gold', 'gold.dim_customer', (select count(*) from gold.dim_customer)
    union all
    select 'gold', 'gold.dim_product', (select count(*) from gold.dim_product)
    union all
    select 'gold', 'gold.fact_sales', (select count(*) from gold.fact_sales)
    union all
    select 'gold', 'gold.customer_clv', (select count(*) from gold.customer_clv)
),

final as (
    select * from bronze
    union all
    select * from current_tables
)

select * from final
order by array_position(array['bronze', 'silver', 'gold'], layer), table_name
