-- The same measures per calendar month and region (customers distinct within
-- the month), kept incrementally as agg_daily_sales is.
with

signed_facts as (
    select date_trunc('month', order_date)::date as month_start, region, customer_id, quantity, amount, 1 as sign
    from new_facts
    union all
    select date_trunc('month', order_date)::date, region, customer_id, quantity, amount, -1
    from old_facts
),

per_customer as (
    select
        month_start,
        region,
        sum(sign) as orders,
        bool_or(sign = 1)::integer - bool_or(sign = -1)::integer as customers,
        sum(sign * quantity) as quantity,
        sum(sign * amount) as revenue
    from signed_facts
    group by month_start, region, customer_id
),

final as (
    select
        region,
        sum(orders) as orders,
        sum(customers) as customers,
        sum(quantity) as quantity,
        sum(revenue) as revenue,
        month_start
    from per_customer
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
