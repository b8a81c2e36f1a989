-- The date's anomalies, strongest first, as the task's message names them.
with

anomalies as (
    select source_name, metric, subject, score
    from meta.anomalies
    where extract_date = %(date)s and is_anomaly
),

final as (
    select
        concat_ws(' ', source_name, metric, nullif(subject, '')) || ' (' || round(score::numeric, 1) || ')'
            as label
    from anomalies
    order by abs(score) desc, source_name, metric, subject
)

select * from final
