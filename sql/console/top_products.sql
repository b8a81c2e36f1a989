-- Best-selling products by revenue.
select
    product_id,
    product_name,
    category,
    total_orders,
    total_quantity_sold,
    customers,
    revenue::float8 as revenue,
    average_unit_price::float8 as average_unit_price
from gold.product_analytics
order by revenue desc, product_id
limit %(limit)s
