-- Each source's newest extract date loaded into bronze (midnight UTC, as Unix
-- seconds) and its age now.
with ingested as (
    select source_name, extract_date from meta.ingested_files
),

latest as (
    select
        source_name,
        max(extract_date) as extract_date
    from ingested
    group by source_name
),

final as (
    select
        source_name,
        extract(epoch from extract_date::timestamp at time zone 'UTC')::float8 as extract_seconds,
        extract(epoch from clock_timestamp() - extract_date::timestamp at time zone 'UTC')::float8 as age_seconds
    from latest
)

select * from final
