-- Per product: order lines, quantity sold, distinct customers, revenue (kept
-- incrementally as in agg_daily_sales), then the product's current attributes
-- and the average unit price (revenue / quantity sold).
with

touched_groups as (
    select distinct customer_id, product_key from fact_lines where is_changed
),

facts as not materialized (
    select batch_id, sign, product_key, customer_id, quantity, amount
    from fact_lines
    where %(full)s or (customer_id, product_key) in (select * from touched_groups)
),

sums as (
    select
        product_key,
        sum(sign) as total_orders,
        sum(sign * quantity) as total_quantity_sold,
        sum(sign * amount) as revenue
    from facts
    group by product_key
),

customers as (
    select
        product_key,
        sum(sign) as customers
    from (select distinct batch_id, sign, product_key, customer_id from facts) as presence
    group by product_key
),

changes as (
    select
        sums.product_key,
        sums.total_orders,
        sums.total_quantity_sold,
        customers.customers,
        sums.revenue
    from sums
    inner join customers
        on sums.product_key = customers.product_key
    where (sums.total_orders, sums.total_quantity_sold, customers.customers, sums.revenue) <> (0, 0, 0, 0)
),

final as (
    select
        changes.product_key,
        dim_product.product_id,
        changes.total_orders,
        changes.total_quantity_sold,
        changes.customers,
        changes.revenue
    from changes
    inner join gold.dim_product
        on changes.product_key = dim_product.product_key
)

select * from final
