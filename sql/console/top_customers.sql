-- Customers with the highest predicted CLV at the latest CLV date (historical
-- CLV orders the rest when the models could not predict).
with latest as (
    select max(as_of_date) as as_of_date from gold.customer_clv
),

ranked as (
    select *
    from gold.customer_clv
    where as_of_date = (select as_of_date from latest)
    order by predicted_clv desc nulls last, historical_clv desc, customer_id
    limit %(limit)s
),

final as (
    select
        ranked.customer_id,
        customer.first_name,
        customer.last_name,
        customer.email,
        customer.phone,
        customer.region,
        ranked.frequency,
        ranked.predicted_clv::float8 as predicted_clv,
        ranked.historical_clv::float8 as historical_clv,
        ranked.p_alive::float8 as p_alive,
        ranked.expected_purchases::float8 as expected_purchases,
        ranked.as_of_date
    from ranked
    left join {customer} as customer
        on ranked.customer_id = customer.customer_id
)

select * from final
order by predicted_clv desc nulls last, historical_clv desc, customer_id
