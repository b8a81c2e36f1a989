-- Anomaly scores of one extract date (%(date)s), every metric against its own
-- history: the last %(history_days)s extract dates before it (a source's first
-- extract, its initial history load, is never history nor scored). Robust z-score
-- on a weekday-adjusted series, compared on y = ln(1 + value) (multiplicative
-- effects become additive, a heavy right tail shrinks, and zero stays finite);
-- a null rate is compared as it is:
--   weekday effect  = median(y on that weekday) - median(y), with >= 2 such dates, else 0
--   adjusted        = y - weekday effect;  center = median(adjusted)
--   expected        = center + the date's weekday effect
--   scale           = 1.4826 * MAD(adjusted), widened for the few dates behind
--                     each median, and at least the sampling noise (Poisson for
--                     counts, binomial for a null rate; for revenue and average
--                     price that of a sum or mean of order lines, its median over
--                     the history) and %(min_relative_scale)s
--   score           = (y - expected) / scale; an anomaly when |score| >= %(threshold)s
--                     and the metric has >= %(min_history)s dates of history.
delete from meta.anomalies where extract_date = %(date)s;

with

ingested_files as (
    select
        load_id,
        source_name,
        coalesce(records, rows_loaded + coalesce(rows_rejected, 0)) as records,
        extract_date
    from meta.ingested_files
),

column_profiles as (
    select load_id, column_name, row_count, null_rate, distinct_count
    from meta.column_profiles
),

fact_sales as (
    select region, unit_price, amount, order_date
    from gold.fact_sales
),

first_extracts as (
    select source_name, min(extract_date) as first_extract_date
    from ingested_files
    group by source_name
),

-- The latest load of each source and extract date (a reprocessed date loads again).
latest_loads as (
    select distinct on (ingested_files.source_name, ingested_files.extract_date)
        ingested_files.load_id,
        ingested_files.source_name,
        ingested_files.records,
        ingested_files.extract_date
    from ingested_files
    inner join first_extracts
        on ingested_files.source_name = first_extracts.source_name
    where ingested_files.extract_date <= %(date)s
        and (ingested_files.extract_date > first_extracts.first_extract_date
             or ingested_files.extract_date = %(date)s)
    order by ingested_files.source_name, ingested_files.extract_date, ingested_files.load_id desc
),

loads as (
    select *
    from (
        select
            *,
            row_number() over (partition by source_name order by extract_date desc) - 1 as dates_back
        from latest_loads
    ) as ranked
    where dates_back <= %(history_days)s
        and (dates_back > 0 or extract_date = %(date)s)
),

-- Gold is compared on the extract dates of the window, each as the order date of its lines.
gold_dates as (
    select distinct extract_date
    from loads
),

dated_lines as (
    select fact_sales.*
    from fact_sales
    inner join gold_dates
        on fact_sales.order_date = gold_dates.extract_date
),

-- Revenue of a region and date as gold.agg_daily_sales holds it, and its sampling noise
-- as a sum of order lines (compound Poisson: sd / sum = sqrt(sum of squares) / sum).
region_sales as (
    select
        region,
        sum(amount)::float8 as revenue,
        sqrt(sum(amount * amount))::float8 / nullif(sum(amount), 0)::float8 as noise,
        order_date
    from dated_lines
    group by region, order_date
),

regions as (
    select distinct region
    from region_sales
),

-- A region with no sales on a date is a zero, not a missing point.
region_revenue as (
    select
        regions.region,
        coalesce(region_sales.revenue, 0) as revenue,
        region_sales.noise,
        gold_dates.extract_date
    from gold_dates
    cross join regions
    left join region_sales
        on gold_dates.extract_date = region_sales.order_date
        and regions.region = region_sales.region
),

-- The mean price of the date's lines, and its relative standard error.
unit_prices as (
    select
        avg(unit_price)::float8 as average_unit_price,
        (stddev_samp(unit_price) / nullif(avg(unit_price), 0) / sqrt(count(*)))::float8 as noise,
        order_date as extract_date
    from dated_lines
    group by order_date
),

observations as (
    select source_name, 'volume' as metric, '' as subject, records::float8 as value, null::bigint as row_count,
        null::float8 as noise, extract_date
    from loads
    union all
    select loads.source_name, 'null_rate', column_profiles.column_name, column_profiles.null_rate::float8,
        column_profiles.row_count, null, loads.extract_date
    from loads
    inner join column_profiles
        on loads.load_id = column_profiles.load_id
    union all
    select loads.source_name, 'distinct_count', column_profiles.column_name,
        column_profiles.distinct_count::float8, null, null, loads.extract_date
    from loads
    inner join column_profiles
        on loads.load_id = column_profiles.load_id
    union all
    select 'gold', 'revenue', region, revenue, null, noise, extract_date
    from region_revenue
    union all
    select 'gold', 'average_unit_price', '', average_unit_price, null, noise, extract_date
    from unit_prices
),

series as (
    select
        *,
        case when metric = 'null_rate' then value else ln(1 + greatest(value, 0)) end as y,
        extract(isodow from extract_date)::integer as weekday
    from observations
),

history as (
    select * from series where extract_date < %(date)s
),

today as (
    select * from series where extract_date = %(date)s
),

levels as (
    select
        source_name,
        metric,
        subject,
        percentile_cont(0.5) within group (order by y) as level
    from history
    group by source_name, metric, subject
),

weekday_effects as (
    select
        history.source_name,
        history.metric,
        history.subject,
        history.weekday,
        count(*) as weekday_dates,
        case
            when count(*) >= 2 then percentile_cont(0.5) within group (order by history.y) - min(levels.level)
            else 0
        end as weekday_effect
    from history
    inner join levels using (source_name, metric, subject)
    group by history.source_name, history.metric, history.subject, history.weekday
),

adjusted as (
    select
        history.source_name,
        history.metric,
        history.subject,
        history.y - weekday_effects.weekday_effect as adjusted_y,
        history.noise
    from history
    inner join weekday_effects using (source_name, metric, subject, weekday)
),

centers as (
    select
        source_name,
        metric,
        subject,
        count(*) as history_dates,
        percentile_cont(0.5) within group (order by adjusted_y) as center,
        percentile_cont(0.5) within group (order by noise) as noise
    from adjusted
    group by source_name, metric, subject
),

spreads as (
    select
        adjusted.source_name,
        adjusted.metric,
        adjusted.subject,
        percentile_cont(0.5) within group (order by abs(adjusted.adjusted_y - centers.center)) as mad
    from adjusted
    inner join centers using (source_name, metric, subject)
    group by adjusted.source_name, adjusted.metric, adjusted.subject
),

-- Dates behind each weekday's median, on average over the weekdays that have an effect.
weekday_depth as (
    select
        source_name,
        metric,
        subject,
        avg(weekday_dates) filter (where weekday_dates >= 2) as dates_per_weekday
    from weekday_effects
    group by source_name, metric, subject
),

expectations as (
    select
        today.source_name,
        today.metric,
        today.subject,
        today.value,
        today.y,
        today.row_count,
        today.extract_date,
        coalesce(centers.history_dates, 0) as history_dates,
        coalesce(weekday_effects.weekday_dates, 0) as weekday_dates,
        centers.noise,
        centers.center + coalesce(weekday_effects.weekday_effect, 0) as expected_y,
        -- MAD of in-sample residuals: a median of k dates sits closer to them (x sqrt(k / (k - 1)));
        -- the expectation carries the error of both medians (variance ~ pi/2 sigma^2 / k each).
        1.4826 * spreads.mad
            * coalesce(sqrt(weekday_depth.dates_per_weekday / (weekday_depth.dates_per_weekday - 1)), 1)
            * sqrt(1 + pi() / 2 * (1.0 / centers.history_dates
                + case when weekday_effects.weekday_dates >= 2 then 1.0 / weekday_effects.weekday_dates else 0 end))
            as spread_scale
    from today
    left join centers using (source_name, metric, subject)
    left join spreads using (source_name, metric, subject)
    left join weekday_depth using (source_name, metric, subject)
    left join weekday_effects using (source_name, metric, subject, weekday)
),

scales as (
    select
        *,
        case
            when expected_y is null then null
            when metric = 'null_rate' then greatest(
                spread_scale,
                -- binomial noise of a rate over the date's rows, a rate of at least one row
                sqrt(least(greatest(expected_y, 1.0 / greatest(row_count, 1)), 0.5)
                     * (1 - least(greatest(expected_y, 1.0 / greatest(row_count, 1)), 0.5))
                     / greatest(row_count, 1)))
            when metric in ('volume', 'distinct_count') then greatest(
                spread_scale,
                %(min_relative_scale)s,
                1 / sqrt(greatest(exp(expected_y) - 1, 1)))  -- Poisson noise of a count, on ln(1 + count)
            else greatest(spread_scale, %(min_relative_scale)s, coalesce(noise, 0))
        end as scale
    from expectations
),

scores as (
    select
        *,
        (y - expected_y) / scale as score
    from scales
),

final as (
    select
        %(run_id)s as run_id,
        source_name,
        metric,
        subject,
        value,
        case when metric = 'null_rate' then expected_y else exp(expected_y) - 1 end as expected,
        case
            when metric = 'null_rate' then greatest(expected_y - %(threshold)s * scale, 0)
            else greatest(exp(expected_y - %(threshold)s * scale) - 1, 0)
        end as expected_low,
        case
            when metric = 'null_rate' then least(expected_y + %(threshold)s * scale, 1)
            else exp(expected_y + %(threshold)s * scale) - 1
        end as expected_high,
        scale,
        case when history_dates >= %(min_history)s then score end as score,
        history_dates,
        weekday_dates,
        coalesce(history_dates >= %(min_history)s and abs(score) >= %(threshold)s, false) as is_anomaly,
        extract_date
    from scores
)

insert into meta.anomalies (run_id, source_name, metric, subject, value, expected, expected_low, expected_high,
                            scale, score, history_dates, weekday_dates, is_anomaly, extract_date)
select * from final
