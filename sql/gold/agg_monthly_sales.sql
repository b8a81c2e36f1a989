-- The same measures per calendar month and region (customers distinct within the month).
delete from gold.agg_monthly_sales;

with

facts as (
    select
        date_trunc('month', order_date)::date as month_start,
        customer_id,
        quantity,
        amount,
        region
    from gold.fact_sales_by_region
),

final as (
    select
        region,
        count(*) as orders,
        count(distinct customer_id) as customers,
        sum(quantity) as quantity,
        sum(amount) as revenue,
        month_start
    from facts
    group by month_start, region
)

insert into gold.agg_monthly_sales (region, orders, customers, quantity, revenue, month_start)
select * from final
