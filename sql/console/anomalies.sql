-- Every scored metric of the last %(dates)s extract dates with scores (meta.anomalies),
-- for the Anomalies page: its flagged list, its counts per date and a metric's series.
with

anomalies as (
    select
        source_name,
        metric,
        subject,
        value,
        expected,
        expected_low,
        expected_high,
        score,
        history_dates,
        is_anomaly,
        extract_date
    from meta.anomalies
),

recent_dates as (
    select distinct extract_date
    from anomalies
    order by extract_date desc
    limit %(dates)s
),

final as (
    select
        anomalies.source_name,
        anomalies.metric,
        anomalies.subject,
        concat_ws(' · ', anomalies.source_name, anomalies.metric, nullif(anomalies.subject, '')) as series,
        anomalies.value,
        anomalies.expected,
        anomalies.expected_low,
        anomalies.expected_high,
        anomalies.score,
        anomalies.history_dates,
        anomalies.is_anomaly,
        anomalies.extract_date
    from anomalies
    inner join recent_dates
        on anomalies.extract_date = recent_dates.extract_date
)

select * from final
order by extract_date, source_name, metric, subject
