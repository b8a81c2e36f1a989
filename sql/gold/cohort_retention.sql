-- For each cohort (month of a customer's first purchase) and each month since:
-- the cohort's size, the customers who bought that month, and their revenue.
delete from gold.cohort_retention;

with

purchases as (
    select
        customer_id,
        date_trunc('month', order_date)::date as order_month,
        amount
    from gold.fact_sales
),

cohorts as (
    select
        customer_id,
        min(order_month) as cohort_month
    from purchases
    group by customer_id
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_size
    from cohorts
    group by cohort_month
),

activity as (
    select
        cohorts.cohort_month,
        (extract(year from age(purchases.order_month, cohorts.cohort_month)) * 12
            + extract(month from age(purchases.order_month, cohorts.cohort_month)))::integer
            as months_since_first,
        count(distinct purchases.customer_id) as active_customers,
        sum(purchases.amount) as revenue
    from purchases
    inner join cohorts
        on purchases.customer_id = cohorts.customer_id
    group by 1, 2
),

final as (
    select
        activity.months_since_first,
        cohort_sizes.cohort_size,
        activity.active_customers,
        round(activity.active_customers::numeric / cohort_sizes.cohort_size, 6) as retention_rate,
        activity.revenue,
        activity.cohort_month
    from activity
    inner join cohort_sizes
        on activity.cohort_month = cohort_sizes.cohort_month
)

insert into gold.cohort_retention
select * from final
