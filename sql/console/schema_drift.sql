-- Columns of landing files that differ from their source contract, per source, date, change and action.
with drift as (
    select
        run_id,
        source_name,
        source_file,
        change,
        action,
        column_name,
        detail,
        extract_date,
        detected_at
    from meta.schema_drift
),

final as (
    select
        source_name,
        change,
        action,
        string_agg(column_name, ', ' order by column_name) as columns,
        min(detail) as detail,
        max(source_file) as source_file,
        max(run_id) as run_id,
        extract_date,
        max(detected_at) as detected_at
    from drift
    group by extract_date, source_name, change, action
)

select * from final
order by extract_date desc, source_name, change, action
limit 500
