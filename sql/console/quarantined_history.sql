-- Share of input lines lost to quarantine per silver table and for all of them
-- ('*'), for each run date, from the date's latest quality gate.
with latest as (
    select distinct on (run_date, table_name)
        table_name,
        lines_in,
        bronze_rejected + silver_quarantined as lines_quarantined,
        max_share,
        is_breach,
        run_date
    from meta.quarantined_shares
    order by run_date, table_name, computed_at desc
),

final as (
    select
        coalesce(table_name, '*') as table_name,
        sum(lines_in)::bigint as lines_in,
        sum(lines_quarantined)::bigint as lines_quarantined,
        sum(lines_quarantined)::float8 / nullif(sum(lines_in), 0) as quarantined_share,
        max(max_share)::float8 as max_share,
        bool_or(is_breach) as is_breach,
        run_date
    from latest
    group by grouping sets ((run_date, table_name), (run_date))
)

select * from final
order by run_date, table_name
