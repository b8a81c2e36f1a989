-- Each database source's latest committed extract: its high-water mark (Unix
-- seconds for a timestamp watermark, the value for a numeric one), its lag behind
-- the source's clock when taken, and when that was.
with

latest as (
    select distinct on (source_name)
        source_name,
        watermark_kind,
        high_watermark,
        lag_seconds,
        extracted_at
    from meta.source_watermarks
    order by source_name, load_id desc
),

final as (
    select
        source_name,
        case
            when watermark_kind = 'timestamp' then extract(epoch from high_watermark::timestamptz)
            else high_watermark::numeric
        end::float8 as high_watermark,
        lag_seconds::float8 as lag_seconds,
        extract(epoch from extracted_at)::float8 as extracted_seconds
    from latest
)

select * from final
