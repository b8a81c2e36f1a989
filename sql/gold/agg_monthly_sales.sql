-- The same measures per calendar month and region (customers distinct within
-- the month), kept incrementally as agg_daily_sales is.
with

touched_groups as (
    select distinct customer_id, date_trunc('month', order_date)::date as month_start, region
    from fact_lines
    where is_changed
),

facts as (
    select batch_id, sign, date_trunc('month', order_date)::date as month_start, region, customer_id, quantity,
           amount
    from fact_lines
    where %(full)s
        or (customer_id, date_trunc('month', order_date)::date, region) in (select * from touched_groups)
),

per_side as (
    select
        month_start,
        region,
        sign * count(*) as orders,
        sign * count(distinct customer_id) as customers,
        sign * sum(quantity) as quantity,
        sign * sum(amount) as revenue
    from facts
    group by batch_id, sign, month_start, region
),

final as (
    select
        region,
        sum(orders) as orders,
        sum(customers) as customers,
        sum(quantity) as quantity,
        sum(revenue) as revenue,
        month_start
    from per_side
    group by month_start, region
    having (sum(orders), sum(customers), sum(quantity), sum(revenue)) <> (0, 0, 0, 0)
)

insert into gold.agg_monthly_sales as current_row (region, orders, customers, quantity, revenue, month_start)
select * from final
on conflict (month_start, region) do update set
    orders = current_row.orders + excluded.orders,
    customers = current_row.customers + excluded.customers,
    quantity = current_row.quantity + excluded.quantity,
    revenue = current_row.revenue + excluded.revenue;

delete from gold.agg_monthly_sales where orders = 0
