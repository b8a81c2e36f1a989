-- Orders (order lines), distinct customers, quantity and revenue per day and
-- region, kept incrementally: each group changes, per batch of fact changes, by
-- its measures over the affected customers' lines after the batch (sign +1)
-- minus the same before it (sign -1; sql/gold/steps/fact_delta.sql). Distinct
-- customers too: the other customers' lines did not change, nor those of a
-- customer in a group where none of their lines changed (touched_groups). A
-- first build reads the whole fact as one batch of +1 lines.
with

touched_groups as (
    select distinct customer_id, order_date, region from fact_lines where is_changed
),

facts as (
    select batch_id, sign, order_date, region, customer_id, quantity, amount
    from fact_lines
    where %(full)s or (customer_id, order_date, region) in (select * from touched_groups)
),

per_side as (
    select
        order_date,
        region,
        sign * count(*) as orders,
        sign * count(distinct customer_id) as customers,
        sign * sum(quantity) as quantity,
        sign * sum(amount) as revenue
    from facts
    group by batch_id, sign, order_date, region
),

changes as (
    select
        order_date,
        region,
        sum(orders) as orders,
        sum(customers) as customers,
        sum(quantity) as quantity,
        sum(revenue) as revenue
    from per_side
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
