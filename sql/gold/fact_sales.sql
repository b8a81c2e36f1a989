-- The date's order lines, and every fact of a customer whose versions this
-- date changed (their customer_key may now be another version). Upserted, so
-- reprocessing a date changes nothing.
create temp table fact_orders on commit drop as
select order_id
from silver.sales
where _extract_date = %(date)s
union
select fact_sales.order_id
from gold.fact_sales
where fact_sales.customer_id in (
    select customer_id from silver.customer_versions where _extract_date = %(date)s
);

with

orders as (
    select sales.*
    from silver.sales
    inner join fact_orders
        on sales.order_id = fact_orders.order_id
),

-- Each version's range; the first one reaches back to the start of time.
customer_ranges as (
    select
        customer_key,
        customer_id,
        case
            when lag(valid_from) over (partition by customer_id order by valid_from) is null
                then '-infinity'::timestamptz
            else valid_from
        end as range_from,
        coalesce(valid_to, 'infinity'::timestamptz) as range_to
    from gold.dim_customer
    where customer_id in (select customer_id from orders)
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        customer_ranges.customer_key,
        dim_product.product_key,
        to_char(orders.order_date, 'YYYYMMDD')::integer as date_key,
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

insert into gold.fact_sales
select * from final
on conflict (order_id) do update set
    customer_id = excluded.customer_id,
    customer_key = excluded.customer_key,
    product_key = excluded.product_key,
    date_key = excluded.date_key,
    quantity = excluded.quantity,
    unit_price = excluded.unit_price,
    amount = excluded.amount,
    order_date = excluded.order_date,
    _extract_date = excluded._extract_date
where (gold.fact_sales.customer_key, gold.fact_sales.product_key, gold.fact_sales.amount,
       gold.fact_sales.quantity, gold.fact_sales._extract_date)
    is distinct from (excluded.customer_key, excluded.product_key, excluded.amount, excluded.quantity,
                      excluded._extract_date)
