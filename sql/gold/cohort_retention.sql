-- For each cohort (month of a customer's first purchase) and each month since:
-- the customers who bought that month and their revenue, kept incrementally as
-- in agg_daily_sales (a customer's cohort is taken from all their lines, which
-- each batch holds before and after), then the cohort's size (every member buys
-- in month 0) and the retention rate.
with

facts as (
    select batch_id, sign, customer_id, date_trunc('month', order_date)::date as order_month, amount
    from fact_lines
),

cohorts as (
    select
        batch_id,
        sign,
        customer_id,
        min(order_month) as cohort_month
    from facts
    group by batch_id, sign, customer_id
),

per_side as (
    select
        cohorts.cohort_month,
        facts.order_month,
        facts.sign * count(distinct facts.customer_id) as active_customers,
        facts.sign * sum(facts.amount) as revenue
    from facts
    inner join cohorts
        on facts.customer_id = cohorts.customer_id
        and facts.batch_id = cohorts.batch_id
        and facts.sign = cohorts.sign
    group by facts.batch_id, facts.sign, cohorts.cohort_month, facts.order_month
),

final as (
    select
        (extract(year from age(order_month, cohort_month)) * 12
            + extract(month from age(order_month, cohort_month)))::integer as months_since_first,
        sum(active_customers) as active_customers,
        sum(revenue) as revenue,
        cohort_month
    from per_side
    group by cohort_month, order_month
    having (sum(active_customers), sum(revenue)) <> (0, 0)
)

insert into gold.cohort_retention as current_row (months_since_first, cohort_size, active_customers,
                                                  retention_rate, revenue, cohort_month)
select months_since_first, 0, active_customers, 0, revenue, cohort_month from final
on conflict (cohort_month, months_since_first) do update set
    active_customers = current_row.active_customers + excluded.active_customers,
    revenue = current_row.revenue + excluded.revenue;

delete from gold.cohort_retention where active_customers = 0;

with

final as (
    select
        cohort_retention.cohort_month,
        cohort_retention.months_since_first,
        first_month.active_customers as cohort_size,
        round(cohort_retention.active_customers::numeric / first_month.active_customers, 6) as retention_rate
    from gold.cohort_retention
    inner join gold.cohort_retention as first_month
        on cohort_retention.cohort_month = first_month.cohort_month
        and first_month.months_since_first = 0
)

update gold.cohort_retention
set
    cohort_size = final.cohort_size,
    retention_rate = final.retention_rate
from final
where cohort_retention.cohort_month = final.cohort_month
    and cohort_retention.months_since_first = final.months_since_first
    and (cohort_retention.cohort_size, cohort_retention.retention_rate)
        is distinct from (final.cohort_size, final.retention_rate)
