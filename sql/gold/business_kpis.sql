-- The date's headline figures: orders and revenue to date, customers, active
-- customers (a purchase in the 90 days up to the date), average order value,
-- repeat purchase rate and average CLV (from gold.customer_clv of the date),
-- and the date's quality score. %(from_summary)s: no order line is dated after
-- the date, so the orders to date are every line, per customer in
-- gold.customer_purchase_summary; otherwise they are counted in the fact.
with

from_fact as (
    select
        count(*) as orders,
        count(distinct customer_id) as customers,
        count(distinct customer_id) filter (where order_date > %(date)s::date - 90) as active_customers,
        coalesce(sum(amount), 0) as revenue
    from gold.fact_sales
    where order_date <= %(date)s
    having not %(from_summary)s
),

from_summary as (
    select
        coalesce(sum(orders), 0)::bigint as orders,
        count(*) as customers,
        count(*) filter (where last_order_date > %(date)s::date - 90) as active_customers,
        coalesce(sum(revenue), 0) as revenue
    from gold.customer_purchase_summary
    having %(from_summary)s
),

orders_to_date as (
    select * from from_fact
    union all
    select * from from_summary
),

clv as (
    select
        avg((frequency > 0)::integer) as repeat_purchase_rate,
        avg(historical_clv) as average_historical_clv,
        avg(predicted_clv) as average_predicted_clv
    from gold.customer_clv
    where as_of_date = %(date)s
),

quality as (
    select score as quality_score
    from meta.quality_scores
    where run_date = %(date)s and table_name = '*' and dimension = 'overall'
    order by computed_at desc
    limit 1
),

final as (
    select
        orders_to_date.orders,
        orders_to_date.customers,
        orders_to_date.active_customers,
        orders_to_date.revenue,
        round(orders_to_date.revenue / nullif(orders_to_date.orders, 0), 2) as average_order_value,
        round(clv.repeat_purchase_rate, 6) as repeat_purchase_rate,
        round(clv.average_historical_clv, 2) as average_historical_clv,
        round(clv.average_predicted_clv, 2) as average_predicted_clv,
        (select quality_score from quality) as quality_score,
        %(date)s::date as run_date
    from orders_to_date
    cross join clv
)

select * from final
