-- Histogram of predicted (or historical) CLV at the latest CLV date: 20 equal
-- bins from 0 to the 99th percentile; the top percent falls into the last bin.
with latest as (
    select max(as_of_date) as as_of_date from gold.customer_clv
),

clv_values as (
    select
        case when %(measure)s = 'predicted' then predicted_clv else historical_clv end::float8 as clv
    from gold.customer_clv
    where as_of_date = (select as_of_date from latest)
),

bounds as (
    select
        greatest(percentile_cont(0.99) within group (order by clv), 0.01) as upper_bound
    from clv_values
    where clv is not null
),

binned as (
    select
        least(greatest(width_bucket(clv_values.clv, 0, bounds.upper_bound, 20), 1), 20) as bin,
        bounds.upper_bound
    from clv_values
    cross join bounds
    where clv_values.clv is not null
),

final as (
    select
        bin,
        count(*) as customers,
        (bin - 1) * max(upper_bound) / 20 as bin_start,
        case when bin = 20 then null else bin * max(upper_bound) / 20 end as bin_end,
        bin * max(upper_bound) / 20 as bin_plot_end
    from binned
    group by bin
)

select * from final
order by bin
