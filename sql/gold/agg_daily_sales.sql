-- Orders (order lines), distinct customers, quantity and revenue per day and region.
delete from gold.agg_daily_sales;

with

facts as (
    select
        date_key,
        order_date,
        order_id,
        customer_id,
        quantity,
        amount,
        region
    from gold.fact_sales_by_region
),

final as (
    select
        date_key,
        region,
        count(*) as orders,
        count(distinct customer_id) as customers,
        sum(quantity) as quantity,
        sum(amount) as revenue,
        order_date
    from facts
    group by date_key, order_date, region
)

insert into gold.agg_daily_sales (date_key, region, orders, customers, quantity, revenue, order_date)
select * from final
