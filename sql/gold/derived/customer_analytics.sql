-- gold.customer_analytics after its sums are caught up: average order value and
-- each region's share of revenue.
with

totals as (
    select sum(revenue) as revenue from gold.customer_analytics
),

final as (
    select
        customer_analytics.region,
        round(customer_analytics.revenue / nullif(customer_analytics.orders, 0), 2) as average_order_value,
        round(customer_analytics.revenue / nullif(totals.revenue, 0), 6) as revenue_share
    from gold.customer_analytics
    cross join totals
)

select * from final
