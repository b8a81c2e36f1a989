-- Per region: customers who bought, orders, revenue, average order value and share of revenue.
delete from gold.customer_analytics;

with

facts as (
    select
        customer_id,
        amount,
        region
    from gold.fact_sales_by_region
),

per_region as (
    select
        region,
        count(distinct customer_id) as customers,
        count(*) as orders,
        sum(amount) as revenue
    from facts
    group by region
),

final as (
    select
        region,
        customers,
        orders,
        revenue,
        round(revenue / nullif(orders, 0), 2) as average_order_value,
        round(revenue / nullif(sum(revenue) over (), 0), 6) as revenue_share
    from per_region
)

insert into gold.customer_analytics
select * from final
