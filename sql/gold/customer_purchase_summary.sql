-- Per customer over every order line of the fact: order lines, purchase days
-- (distinct order dates), revenue of the first purchase day and in total, first
-- and last order date. Kept incrementally: the rows of the customers in the
-- batches since the last catch-up are rebuilt from their lines now, which the
-- newest of those batches that holds a customer has (its +1 side).
with

newest_batches as (
    select customer_id, max(batch_id) as batch_id
    from fact_lines
    group by customer_id
),

lines as materialized (
    select customer_id, order_date, amount
    from fact_lines
    where sign = 1
        and (%(full)s or (customer_id, batch_id) in (select * from newest_batches))
),

per_customer as (
    select
        customer_id,
        count(*) as orders,
        sum(amount) as revenue,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from lines
    group by customer_id
),

purchase_days as (
    select
        customer_id,
        count(*) as purchase_days
    from (select distinct customer_id, order_date from lines) as days
    group by customer_id
),

first_days as (
    select
        lines.customer_id,
        sum(lines.amount) as first_day_revenue
    from lines
    inner join per_customer
        on lines.customer_id = per_customer.customer_id
        and lines.order_date = per_customer.first_order_date
    group by lines.customer_id
),

final as (
    select
        per_customer.customer_id,
        per_customer.orders,
        purchase_days.purchase_days,
        first_days.first_day_revenue,
        per_customer.revenue,
        per_customer.first_order_date,
        per_customer.last_order_date
    from per_customer
    inner join purchase_days
        on per_customer.customer_id = purchase_days.customer_id
    inner join first_days
        on per_customer.customer_id = first_days.customer_id
)

select * from final
