-- Per customer, as of the run date, in days: purchase days after the first
-- (frequency), first to last purchase day (recency), first purchase day to the
-- as-of date (t), the mean total of the repeat purchase days (monetary_value,
-- the first day excluded) and total spend (historical CLV).
with

purchase_days as (
    select
        customer_id,
        order_date,
        sum(amount) as day_total,
        row_number() over (partition by customer_id order by order_date) as day_number
    from gold.fact_sales
    where order_date <= %(date)s
    group by customer_id, order_date
),

final as (
    select
        customer_id,
        count(*) - 1 as frequency,
        max(order_date) - min(order_date) as recency_days,
        %(date)s::date - min(order_date) as t_days,
        coalesce(sum(day_total) filter (where day_number > 1) / nullif(count(*) - 1, 0), 0) as monetary_value,
        sum(day_total) as historical_clv
    from purchase_days
    group by customer_id
)

select * from final order by customer_id
