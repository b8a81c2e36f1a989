-- Anomalies of the newest extract date with scores (meta.anomalies), per source and
-- metric, zeros included (so that an alert resolves), with the largest |score|.
with

anomalies as (
    select source_name, metric, score, is_anomaly, extract_date
    from meta.anomalies
),

latest as (
    select max(extract_date) as extract_date
    from anomalies
),

final as (
    select
        anomalies.source_name,
        anomalies.metric,
        (count(*) filter (where anomalies.is_anomaly))::float8 as anomalies,
        coalesce(max(abs(anomalies.score)), 0)::float8 as max_abs_score,
        extract(epoch from latest.extract_date::timestamp at time zone 'UTC')::float8 as extract_seconds
    from anomalies
    inner join latest
        on anomalies.extract_date = latest.extract_date
    group by anomalies.source_name, anomalies.metric, latest.extract_date
)

select * from final
order by source_name, metric
