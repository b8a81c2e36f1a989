-- The same measures per calendar month and region (customers distinct within
-- the month), kept incrementally as agg_daily_sales is.
with

touched_groups as (
    select distinct customer_id, date_trunc('month', order_date)::date as month_start, region
    from fact_lines
    where is_changed
),

facts as not materialized (
    select batch_id, sign, date_trunc('month', order_date)::date as month_start, region, customer_id, quantity,
           amount
    from fact_lines
    where %(full)s
        or (customer_id, date_trunc('month', order_date)::date, region) in (select * from touched_groups)
),

sums as (
    select
        month_start,
        region,
        sum(sign) as orders,
        sum(sign * quantity) as quantity,
        sum(sign * amount) as revenue
    from facts
    group by month_start, region
),

customers as (
    select
        month_start,
        region,
        sum(sign) as customers
    from (select distinct batch_id, sign, month_start, region, customer_id from facts) as presence
    group by month_start, region
),

final as (
    select
        sums.region,
        sums.orders,
        customers.customers,
        sums.quantity,
        sums.revenue,
        sums.month_start
    from sums
    inner join customers
        on sums.month_start = customers.month_start
        and sums.region = customers.region
    where (sums.orders, customers.customers, sums.quantity, sums.revenue) <> (0, 0, 0, 0)
)

select * from final
