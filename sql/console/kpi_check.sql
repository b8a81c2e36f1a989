-- The Business page's KPI tiles recomputed from gold.fact_sales up to the KPI date: what "how is this
-- computed" shows, with the fact rows it reads.
with facts as (
    select
        order_id,
        customer_id,
        amount
    from gold.fact_sales
    where order_date <= %(run_date)s
),

final as (
    select
        count(*) as fact_rows,
        count(distinct order_id) as orders,
        count(distinct customer_id) as customers,
        coalesce(sum(amount), 0)::float8 as revenue,
        (sum(amount) / nullif(count(distinct order_id), 0))::float8 as average_order_value
    from facts
)

select * from final
