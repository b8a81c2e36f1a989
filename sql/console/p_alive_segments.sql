-- Customers by probability of being alive (BG/NBD) at the latest CLV date.
with latest as (
    select max(as_of_date) as as_of_date from gold.customer_clv
),

segmented as (
    select
        case
            when p_alive is null then 5
            when p_alive >= 0.75 then 1
            when p_alive >= 0.50 then 2
            when p_alive >= 0.25 then 3
            else 4
        end as segment_order,
        predicted_clv,
        historical_clv
    from gold.customer_clv
    where as_of_date = (select as_of_date from latest)
),

final as (
    select
        segment_order,
        (array[
            'active (P(alive) >= 75%%)',
            'cooling (50-75%%)',
            'at risk (25-50%%)',
            'likely lost (< 25%%)',
            'not modelled'
        ])[segment_order] as segment,
        count(*) as customers,
        avg(predicted_clv)::float8 as average_predicted_clv,
        coalesce(sum(predicted_clv), 0)::float8 as predicted_clv,
        avg(historical_clv)::float8 as average_historical_clv
    from segmented
    group by segment_order
)

select * from final
order by segment_order
