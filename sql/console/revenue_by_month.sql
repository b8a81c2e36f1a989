-- Revenue and orders per month and region (the customer's region at the order date).
select
    region,
    orders,
    customers,
    revenue::float8 as revenue,
    month_start
from gold.agg_monthly_sales
order by month_start, region
