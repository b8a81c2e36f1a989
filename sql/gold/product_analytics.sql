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

insert into gold.product_analytics as current_row (product_key, product_id, total_orders, total_quantity_sold,
                                                   customers, revenue)
select * from final
on conflict (product_key) do update set
    total_orders = current_row.total_orders + excluded.total_orders,
    total_quantity_sold = current_row.total_quantity_sold + excluded.total_quantity_sold,
    customers = current_row.customers + excluded.customers,
    revenue = current_row.revenue + excluded.revenue;

delete from gold.product_analytics where total_orders = 0;

-- Product attributes change without any fact changing (dim_product is type 1).
with

final as (
    select
        product_analytics.product_key,
        dim_product.product_id,
        dim_product.product_name,
        dim_product.category,
        round(product_analytics.revenue / nullif(product_analytics.total_quantity_sold, 0), 2)
            as average_unit_price
    from gold.product_analytics
    inner join gold.dim_product
        on product_analytics.product_key = dim_product.product_key
)

update gold.product_analytics
set
    product_id = final.product_id,
    product_name = final.product_name,
    category = final.category,
    average_unit_price = final.average_unit_price
from final
where product_analytics.product_key = final.product_key
    and (product_analytics.product_id, product_analytics.product_name, product_analytics.category,
         product_analytics.average_unit_price)
        is distinct from (final.product_id, final.product_name, final.category, final.average_unit_price)
