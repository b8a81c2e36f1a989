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

facts as not materialized (
    select batch_id, sign, order_date, region, customer_id, quantity, amount
    from fact_lines
    where %(full)s or (customer_id, order_date, region) in (select * from touched_groups)
),

sums as (
    select
        order_date,
        region,
        sum(sign) as orders,
        sum(sign * quantity) as quantity,
        sum(sign * amount) as revenue
    from facts
    group by order_date, region
),

-- A customer counts +1 in a group for each batch that has their lines in it after
-- the change, -1 for each batch that had them before (hashing the distinct
-- customer-group pairs is cheaper than sorting for count(distinct)).
customers as (
    select
        order_date,
        region,
        sum(sign) as customers
    from (select distinct batch_id, sign, order_date, region, customer_id from facts) as presence
    group by order_date, region
),

final as (
    select
        to_char(sums.order_date, 'YYYYMMDD')::integer as date_key,
        sums.region,
        sums.orders,
        customers.customers,
        sums.quantity,
        sums.revenue,
        sums.order_date
    from sums
    inner join customers
        on sums.order_date = customers.order_date
        and sums.region = customers.region
    where (sums.orders, customers.customers, sums.quantity, sums.revenue) <> (0, 0, 0, 0)
)

select * from final
