-- Model of silver.sales for one extract date (see customers.sql for the provided
-- CTEs `source` and `lines`). Dates, quantities and prices are parsed once per
-- distinct text, not once per line.
-- Parameters: %(small_max)s, %(medium_max)s, and the source's settings
-- (sources.toml): %(day_first)s, %(decimal_comma)s.
with

-- Dates, quantities and prices repeat a lot: each distinct text is parsed once.
order_dates as (
    select
        order_date as order_date_text,
        silver.parse_date(order_date, %(day_first)s) as order_date
    from (select distinct order_date from source) as distinct_values
),

quantities as (
    select
        quantity as quantity_text,
        silver.parse_integer(quantity) as quantity
    from (select distinct quantity from source) as distinct_values
),

unit_prices as (
    select
        unit_price as unit_price_text,
        silver.parse_money(unit_price, %(decimal_comma)s) as unit_price
    from (select distinct unit_price from source) as distinct_values
),

-- Each known customer's signup date, for the rule order_date_after_signup.
customer_signups as (
    select
        customer_id,
        signup_date
    from silver.customers
    where first_extract_date <= %(date)s
),

typed as (
    select
        nullif(btrim(source.order_id), '') as order_id,
        nullif(btrim(source.customer_id), '') as customer_id,
        nullif(btrim(source.product_id), '') as product_id,
        quantities.quantity,
        nullif(btrim(source.quantity), '') as quantity_raw,
        unit_prices.unit_price,
        nullif(btrim(source.unit_price), '') as unit_price_raw,
        order_dates.order_date,
        nullif(btrim(source.order_date), '') as order_date_raw,
        customer_signups.signup_date as customer_signup_date,
        source._extract_date,
        source._load_id,
        source._line_number,
        source.copy_number,
        source.first_copy,
        source.key_rank
    from lines as source
    left join order_dates
        on source.order_date = order_dates.order_date_text
    left join quantities
        on source.quantity = quantities.quantity_text
    left join unit_prices
        on source.unit_price = unit_prices.unit_price_text
    left join customer_signups
        on nullif(btrim(source.customer_id), '') = customer_signups.customer_id
),

final as (
    select
        order_id,
        customer_id,
        product_id,
        case
            when quantity * unit_price <= %(small_max)s then 'small'
            when quantity * unit_price <= %(medium_max)s then 'medium'
            else 'large'
        end as order_size,
        quantity,
        quantity_raw,
        unit_price,
        unit_price_raw,
        -- Null when too large for numeric(14, 2); the amount_in_range rule drops such lines.
        case when abs(quantity * unit_price) < 1e12 then (quantity * unit_price)::numeric(14, 2) end as amount,
        order_date,
        order_date_raw,
        customer_signup_date,
        _extract_date,
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        key_rank
    from typed
)

select * from final
