-- The date's CLV rows: the per-customer summary (clv_input, from
-- customer_rfm.sql) with the model's predictions (clv_predictions, computed in
-- Python from its columns; NaN where the models give none).
with

final as (
    select
        clv_input.customer_id,
        clv_input.frequency,
        clv_predictions.recency::numeric(12, 4) as recency,
        clv_predictions.t::numeric(12, 4) as t,
        clv_input.monetary_value,
        clv_input.historical_clv,
        nullif(clv_predictions.expected_purchases, 'NaN')::numeric(14, 6) as expected_purchases,
        nullif(clv_predictions.p_alive, 'NaN')::numeric(7, 6) as p_alive,
        nullif(clv_predictions.expected_avg_spend, 'NaN')::numeric(14, 2) as expected_avg_spend,
        nullif(clv_predictions.predicted_clv, 'NaN')::numeric(16, 2) as predicted_clv,
        %(date)s::date as as_of_date
    from clv_input
    inner join clv_predictions
        on clv_input.ordinal = clv_predictions.ordinal
)

select * from final
