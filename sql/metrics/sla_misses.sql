-- SLA misses per layer (bronze, silver, gold, or run for the whole run): how
-- many, and when the newest was detected.
with misses as (
    select coalesce(layer, task_family, 'run') as layer, detected_at from meta.sla_misses
),

final as (
    select
        layer,
        count(*)::float8 as misses,
        extract(epoch from max(detected_at))::float8 as last_detected_seconds
    from misses
    group by layer
)

select * from final
