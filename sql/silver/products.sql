-- Model of silver.products for one extract date (see customers.sql for the
-- provided CTEs `source` and `lines`).
with

final as (
    select
        nullif(btrim(product_id), '') as product_id,
        nullif(regexp_replace(btrim(product_name), '\s+', ' ', 'g'), '') as product_name,
        nullif(regexp_replace(btrim(category), '\s+', ' ', 'g'), '') as category,
        silver.parse_money(unit_cost, %(decimal_comma)s) as unit_cost,
        nullif(btrim(unit_cost), '') as unit_cost_raw,
        silver.parse_money(list_price, %(decimal_comma)s) as list_price,
        nullif(btrim(list_price), '') as list_price_raw,
        silver.parse_timestamp(updated_at, %(time_zone)s, %(epoch)s) as updated_at,
        nullif(btrim(updated_at), '') as updated_at_raw,
        _extract_date,
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        key_rank
    from lines
)

select * from final
