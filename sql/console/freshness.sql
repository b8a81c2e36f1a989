-- Per source: the newest extract loaded, when, and how far behind today it is.
select
    source_name,
    count(*) as files,
    sum(rows_loaded)::bigint as rows_loaded,
    (current_date - max(extract_date)) as days_behind,
    extract(epoch from clock_timestamp() - max(ingested_at))::float8 / 3600 as hours_since_load,
    max(extract_date) as latest_extract_date,
    max(ingested_at) as last_loaded_at
from meta.ingested_files
group by source_name
order by source_name
