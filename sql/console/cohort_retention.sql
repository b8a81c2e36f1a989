-- Retention per cohort (month of first purchase) and months since it.
select
    months_since_first,
    cohort_size,
    active_customers,
    retention_rate::float8 as retention_rate,
    revenue::float8 as revenue,
    cohort_month
from gold.cohort_retention
order by cohort_month, months_since_first
