-- Orders (order lines), distinct customers, quantity and revenue per day and
-- region, kept incrementally: the affected customers' lines now (new_facts)
-- count +1, as they were (old_facts) -1 (sql/gold/steps/fact_delta.sql); a first
-- build reads the whole fact as new_facts. A customer counts in a group's
-- customers when at least one of their lines is in it.
with

signed_facts as (
    select order_date, region, customer_id, quantity, amount, 1 as sign from new_facts
    union all
    select order_date, region, customer_id, quantity, amount, -1 as sign from old_facts
),

per_customer as (
    select
        order_date,
        region,
        sum(sign) as orders,
        bool_or(sign = 1)::integer - bool_or(sign = -1)::integer as customers,
        sum(sign * quantity) as quantity,
        sum(sign * amount) as revenue
    from signed_facts
    group by order_date, region, customer_id
),

changes as (
    select
        order_date,
        region,
        sum(orders) as orders,
        sum(customers) as customers,
        sum(quantity) as quantity,
        sum(revenue) as revenue
    from per_customer
    group by order_date, region
),

final as (
    select
        to_char(order_date, 'YYYYMMDD')::integer as date_key,
        region,
        orders,
        customers,
        quantity,
        revenue,
        order_date
    from changes
    where (orders, customers, quantity, revenue) <> (0, 0, 0, 0)
)

insert into gold.agg_daily_sales as current_row (date_key, region, orders, customers, quantity, revenue, order_date)
select * from final
on conflict (order_date, region) do update set
    orders = current_row.orders + excluded.orders,
    customers = current_row.customers + excluded.customers,
    quantity = current_row.quantity + excluded.quantity,
    revenue = current_row.revenue + excluded.revenue;

delete from gold.agg_daily_sales where orders = 0
