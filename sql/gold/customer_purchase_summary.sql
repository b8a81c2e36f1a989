-- Per customer over every order line of the fact: order lines, purchase days
-- (distinct order dates), revenue of the first purchase day and in total, first
-- and last order date. Kept incrementally: the rows of the customers in the
-- batches since the last catch-up (fact_lines) are rebuilt from their lines now.
delete from gold.customer_purchase_summary
where not %(full)s
    and customer_id in (select customer_id from fact_lines);

with

purchase_days as (
    select
        customer_id,
        order_date,
        count(*) as orders,
        sum(amount) as revenue
    from gold.fact_sales
    where %(full)s or customer_id in (select customer_id from fact_lines)
    group by customer_id, order_date
),

final as (
    select
        customer_id,
        sum(orders) as orders,
        count(*) as purchase_days,
        (array_agg(revenue order by order_date))[1] as first_day_revenue,
        sum(revenue) as revenue,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from purchase_days
    group by customer_id
)

insert into gold.customer_purchase_summary (customer_id, orders, purchase_days, first_day_revenue, revenue,
                                            first_order_date, last_order_date)
select * from final
