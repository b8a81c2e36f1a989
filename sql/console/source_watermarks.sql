-- Per database source (sources.toml kind = "postgres"): the latest committed
-- extract's high-water mark, its lag behind the source's clock when it was
-- taken, and how long ago that was. Empty when every source is a landing file.
with

latest as (
    select distinct on (source_name)
        source_name,
        watermark_column,
        high_watermark,
        rows_extracted,
        keys_in_snapshot,
        lag_seconds,
        extract_date,
        extracted_at
    from meta.source_watermarks
    order by source_name, load_id desc
),

final as (
    select
        source_name,
        watermark_column,
        high_watermark,
        rows_extracted,
        keys_in_snapshot,
        (lag_seconds / 60)::float8 as lag_minutes,
        (extract(epoch from clock_timestamp() - extracted_at) / 3600)::float8 as hours_since_extract,
        extract_date,
        extracted_at
    from latest
)

select * from final
order by source_name
