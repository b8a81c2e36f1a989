-- gold.clv_model: the two model fits of the run date (pipeline/clv/models.py, fitted by
-- CustomerClv), replacing the date's earlier ones (replace_partition). One row per model; params is
-- null (and message says why) when a fit failed.
select
    fits.model,
    %(time_unit)s as time_unit,
    fits.params::jsonb as params,
    fits.log_likelihood,
    fits.n_customers,
    fits.penalizer,
    fits.penalizer_reason,
    fits.message,
    %(date)s::date as as_of_date
from unnest(
    %(models)s::text[],
    %(params)s::text[],
    %(log_likelihoods)s::float8[],
    %(n_customers)s::bigint[],
    %(penalizers)s::float8[],
    %(penalizer_reasons)s::text[],
    %(messages)s::text[]
) as fits (model, params, log_likelihood, n_customers, penalizer, penalizer_reason, message)
