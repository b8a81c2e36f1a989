-- Model of silver.products for one extract date (see customers.sql for the
-- provided CTEs `source` and `key_ranks`).
with

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
        coalesce(copy_number, 1) as copy_number,
        first_copy,
        coalesce(key_rank, 1) as key_rank,
        source as source_line
    from source
    left join key_ranks using (_load_id, _line_number)
)

select * from final
