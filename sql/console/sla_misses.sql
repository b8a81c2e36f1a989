-- SLA breaches recorded for a run (layer and threshold read from the row as
-- json, so an older meta.sla_misses without those columns still works).
select
    to_jsonb(sla_misses) ->> 'layer' as layer,
    task_family,
    (to_jsonb(sla_misses) ->> 'threshold_minutes')::float8 as threshold_minutes,
    message,
    expected_by,
    detected_at
from meta.sla_misses
where run_id = %(run_id)s
order by detected_at
