-- Every date the extract touches: its order dates and the extract date itself
-- (written by upsert on date_key: a date's row never changes).
with

touched_dates as (
    select distinct order_date as date from silver.sales where _extract_date = %(date)s
    union
    select %(date)s::date
),

final as (
    select
        to_char(date, 'YYYYMMDD')::integer as date_key,
        extract(isodow from date)::smallint as day_of_week,
        extract(week from date)::smallint as iso_week,
        extract(month from date)::smallint as month,
        extract(quarter from date)::smallint as quarter,
        extract(year from date)::smallint as year,
        extract(isodow from date) >= 6 as is_weekend,
        date,
        date_trunc('month', date)::date as month_start
    from touched_dates
)

select * from final
