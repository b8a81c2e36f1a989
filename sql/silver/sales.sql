-- Model of silver.sales for one extract date (see customers.sql). Dates are
-- parsed once per distinct text, not once per line.
-- Parameters: %(date)s, %(small_max)s, %(medium_max)s.
with

loads as (
    select
        load_id,
        extract_date
    from meta.ingested_files
    where source_name = 'erp_sales'
        and extract_date = %(date)s
),

source as (
    select
        raw_rows.*,
        loads.extract_date as _extract_date
    from bronze.erp_sales_raw_rows as raw_rows
    inner join loads
        on raw_rows._load_id = loads.load_id
),

order_dates as (
    select
        order_date as order_date_text,
        silver.parse_date(order_date) as order_date
    from (select distinct order_date from source) as distinct_dates
),

exact_copies as (
    select
        source.*,
        row_number() over same_line as copy_number,
        first_value(source._load_id || ':' || source._line_number) over same_line as first_copy
    from source
    window same_line as (
        partition by order_id, customer_id, product_id, order_date, quantity, unit_price
        order by _load_id, _line_number
    )
),

typed as (
    select
        nullif(btrim(exact_copies.order_id), '') as order_id,
        nullif(btrim(exact_copies.customer_id), '') as customer_id,
        nullif(btrim(exact_copies.product_id), '') as product_id,
        silver.parse_integer(exact_copies.quantity) as quantity,
        nullif(btrim(exact_copies.quantity), '') as quantity_raw,
        silver.parse_money(exact_copies.unit_price) as unit_price,
        nullif(btrim(exact_copies.unit_price), '') as unit_price_raw,
        order_dates.order_date,
        nullif(btrim(exact_copies.order_date), '') as order_date_raw,
        exact_copies._extract_date,
        exact_copies._load_id,
        exact_copies._line_number,
        exact_copies.copy_number,
        exact_copies.first_copy,
        jsonb_build_object(
            'order_id', exact_copies.order_id, 'customer_id', exact_copies.customer_id,
            'product_id', exact_copies.product_id, 'order_date', exact_copies.order_date,
            'quantity', exact_copies.quantity, 'unit_price', exact_copies.unit_price
        ) as record
    from exact_copies
    left join order_dates
        on exact_copies.order_date = order_dates.order_date_text
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
        _extract_date,
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        record
    from typed
)

select * from final
