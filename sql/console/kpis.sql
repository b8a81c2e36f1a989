-- The two most recent KPI dates: the tiles show the latest and its change.
select
    orders,
    customers,
    active_customers,
    revenue::float8 as revenue,
    average_order_value::float8 as average_order_value,
    repeat_purchase_rate::float8 as repeat_purchase_rate,
    average_historical_clv::float8 as average_historical_clv,
    average_predicted_clv::float8 as average_predicted_clv,
    quality_score::float8 as quality_score,
    run_date
from gold.business_kpis
order by run_date desc
limit 2
