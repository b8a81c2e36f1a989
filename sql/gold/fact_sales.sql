-- The fact rows this date determines: its order lines, and every order line of
-- a customer whose versions it changed (their customer_key may now be another
-- version), each with the customer version valid at the end of the order date
-- and that version's region. FactSales writes the ones that differ from the
-- fact (pipeline/tasks_gold.py), so reprocessing a date changes nothing.
with

touched_customers as (
    select distinct customer_id
    from silver.customer_versions
    where _extract_date = %(date)s
),

orders as (
    select
        order_id,
        customer_id,
        product_id,
        quantity,
        unit_price,
        amount,
        order_date,
        _extract_date
    from silver.sales
    where _extract_date = %(date)s
        or customer_id in (select customer_id from touched_customers)
),

-- Each version's range; the first one reaches back to the start of time, and each
-- reaches to the next one's start: an order placed while its customer was deleted
-- at the source (a gap in the dimension) keeps the version before the deletion.
customer_ranges as (
    select
        customer_key,
        customer_id,
        coalesce(region, 'Unknown') as region,
        case
            when lag(valid_from) over (partition by customer_id order by valid_from) is null
                then '-infinity'::timestamptz
            else valid_from
        end as range_from,
        coalesce(
            lead(valid_from) over (partition by customer_id order by valid_from), 'infinity'::timestamptz
        ) as range_to
    from gold.dim_customer
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        customer_ranges.customer_key,
        dim_product.product_key,
        to_char(orders.order_date, 'YYYYMMDD')::integer as date_key,
        customer_ranges.region,
        orders.quantity,
        orders.unit_price,
        orders.amount,
        orders.order_date,
        orders._extract_date
    from orders
    inner join customer_ranges
        on orders.customer_id = customer_ranges.customer_id
        and customer_ranges.range_from < (orders.order_date + 1)::timestamp at time zone 'UTC'
        and (orders.order_date + 1)::timestamp at time zone 'UTC' <= customer_ranges.range_to
    inner join gold.dim_product
        on orders.product_id = dim_product.product_id
)

select * from final
