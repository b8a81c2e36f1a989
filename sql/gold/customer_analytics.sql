-- Per region: customers who bought, orders, revenue, average order value and
-- share of revenue. Counts and revenue are kept incrementally as in
-- agg_daily_sales; the average and the shares are then recomputed from them.
with

touched_groups as (
    select distinct customer_id, region from fact_lines where is_changed
),

facts as not materialized (
    select batch_id, sign, region, customer_id, amount
    from fact_lines
    where %(full)s or (customer_id, region) in (select * from touched_groups)
),

sums as (
    select
        region,
        sum(sign) as orders,
        sum(sign * amount) as revenue
    from facts
    group by region
),

customers as (
    select
        region,
        sum(sign) as customers
    from (select distinct batch_id, sign, region, customer_id from facts) as presence
    group by region
),

final as (
    select
        sums.region,
        customers.customers,
        sums.orders,
        sums.revenue
    from sums
    inner join customers
        on sums.region = customers.region
    where (customers.customers, sums.orders, sums.revenue) <> (0, 0, 0)
)

insert into gold.customer_analytics as current_row (region, customers, orders, revenue)
select * from final
on conflict (region) do update set
    customers = current_row.customers + excluded.customers,
    orders = current_row.orders + excluded.orders,
    revenue = current_row.revenue + excluded.revenue;

delete from gold.customer_analytics where orders = 0;

with

totals as (
    select sum(revenue) as revenue from gold.customer_analytics
),

final as (
    select
        customer_analytics.region,
        round(customer_analytics.revenue / nullif(customer_analytics.orders, 0), 2) as average_order_value,
        round(customer_analytics.revenue / nullif(totals.revenue, 0), 6) as revenue_share
    from gold.customer_analytics
    cross join totals
)

update gold.customer_analytics
set
    average_order_value = final.average_order_value,
    revenue_share = final.revenue_share
from final
where customer_analytics.region = final.region
    and (customer_analytics.average_order_value, customer_analytics.revenue_share)
        is distinct from (final.average_order_value, final.revenue_share)
