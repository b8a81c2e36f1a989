-- Per customer, as of the run date, in days: purchase days after the first
-- (frequency), first to last purchase day (recency), first purchase day to the
-- as-of date (t), the mean total of the repeat purchase days (monetary_value,
-- the first day excluded) and total spend (historical CLV).
-- %(from_summary)s: no order line is dated after the as-of date, so
-- gold.customer_purchase_summary (every line, kept up to date) holds the same
-- figures; otherwise they come from the fact's lines up to the date.
with

purchase_days as (
    select
        customer_id,
        order_date,
        sum(amount) as day_total,
        row_number() over (partition by customer_id order by order_date) as day_number
    from gold.fact_sales
    where order_date <= %(date)s
        and not %(from_summary)s
    group by customer_id, order_date
),

from_fact as (
    select
        customer_id,
        count(*) - 1 as frequency,
        max(order_date) - min(order_date) as recency_days,
        %(date)s::date - min(order_date) as t_days,
        coalesce(sum(day_total) filter (where day_number > 1) / nullif(count(*) - 1, 0), 0) as monetary_value,
        sum(day_total) as historical_clv
    from purchase_days
    group by customer_id
),

from_summary as (
    select
        customer_id,
        purchase_days - 1 as frequency,
        last_order_date - first_order_date as recency_days,
        %(date)s::date - first_order_date as t_days,
        coalesce((revenue - first_day_revenue) / nullif(purchase_days - 1, 0), 0) as monetary_value,
        revenue as historical_clv
    from gold.customer_purchase_summary
    where %(from_summary)s
),

final as (
    select * from from_fact
    union all
    select * from from_summary
)

select * from final order by customer_id
