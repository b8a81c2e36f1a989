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

select * from final
