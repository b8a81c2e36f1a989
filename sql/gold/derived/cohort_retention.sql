-- gold.cohort_retention after its sums are caught up: the cohort's size (every
-- member buys in month 0) and the share of it active in each month.
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

select * from final
