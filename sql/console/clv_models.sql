-- The model fits of the latest CLV date: parameters, log-likelihood, the penalty used and why, or why there is none.
select
    model,
    time_unit,
    params::text as params,
    log_likelihood,
    n_customers,
    penalizer,
    penalizer_reason,
    message,
    as_of_date
from gold.clv_model
where as_of_date = (select max(as_of_date) from gold.clv_model)
order by model
