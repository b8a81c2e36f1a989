-- Per region: customers, orders, revenue, average order value and revenue share.
select
    region,
    customers,
    orders,
    revenue::float8 as revenue,
    average_order_value::float8 as average_order_value,
    revenue_share::float8 as revenue_share
from gold.customer_analytics
order by revenue desc, region
