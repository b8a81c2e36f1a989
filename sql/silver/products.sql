-- Model of silver.products for one extract date (see customers.sql).
-- Parameters: %(date)s.
with

loads as (
    select
        load_id,
        extract_date
    from meta.ingested_files
    where source_name = 'erp_products'
        and extract_date = %(date)s
),

source as (
    select
        raw_rows.*,
        loads.extract_date as _extract_date
    from bronze.erp_products_raw_rows as raw_rows
    inner join loads
        on raw_rows._load_id = loads.load_id
),

exact_copies as (
    select
        source.*,
        row_number() over same_line as copy_number,
        first_value(source._load_id || ':' || source._line_number) over same_line as first_copy
    from source
    window same_line as (
        partition by product_id, product_name, category, unit_cost, list_price, updated_at
        order by _load_id, _line_number
    )
),

final as (
    select
        nullif(btrim(product_id), '') as product_id,
        nullif(regexp_replace(btrim(product_name), '\s+', ' ', 'g'), '') as product_name,
        nullif(regexp_replace(btrim(category), '\s+', ' ', 'g'), '') as category,
        silver.parse_money(unit_cost) as unit_cost,
        nullif(btrim(unit_cost), '') as unit_cost_raw,
        silver.parse_money(list_price) as list_price,
        nullif(btrim(list_price), '') as list_price_raw,
        silver.parse_timestamp(updated_at) as updated_at,
        nullif(btrim(updated_at), '') as updated_at_raw,
        _extract_date,
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        jsonb_build_object(
            'product_id', product_id, 'product_name', product_name, 'category', category,
            'unit_cost', unit_cost, 'list_price', list_price, 'updated_at', updated_at
        ) as record
    from exact_copies
)

select * from final
