-- The latest CLV date, how many customers it covers and how many got a prediction.
select
    count(*) as customers,
    count(predicted_clv) as predicted_customers,
    avg(predicted_clv)::float8 as average_predicted_clv,
    avg(historical_clv)::float8 as average_historical_clv,
    max(as_of_date) as as_of_date
from gold.customer_clv
where as_of_date = (select max(as_of_date) from gold.customer_clv)
