-- The date's headline figures: orders and revenue to date, customers, active
-- customers (a purchase in the 90 days up to the date), average order value,
-- repeat purchase rate and average CLV (from gold.customer_clv of the date),
-- and the date's quality score.
delete from gold.business_kpis where run_date = %(date)s;

with

orders_to_date as (
    select
        count(*) as orders,
        count(distinct customer_id) as customers,
        count(distinct customer_id) filter (where order_date > %(date)s::date - 90) as active_customers,
        coalesce(sum(amount), 0) as revenue
    from gold.fact_sales
    where order_date <= %(date)s
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

insert into gold.business_kpis
select * from final
