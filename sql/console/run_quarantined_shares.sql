-- The share of input lines each silver table lost to quarantine, from a run's
-- quality gate or, when the run did not compute one (its gate was already
-- complete), from the latest gate of its date. Worst table first.
with gates as (
    select
        run_id,
        table_name,
        lines_in,
        bronze_rejected + silver_quarantined as lines_quarantined,
        quarantined_share::float8 as quarantined_share,
        max_share::float8 as max_share,
        is_breach,
        run_id = %(run_id)s as is_this_run,
        computed_at
    from meta.quarantined_shares
    where run_date = %(run_date)s
),

chosen as (
    select run_id
    from gates
    order by is_this_run desc, computed_at desc
    limit 1
),

final as (
    select
        gates.run_id,
        gates.table_name,
        gates.lines_in,
        gates.lines_quarantined,
        gates.quarantined_share,
        gates.max_share,
        gates.is_breach,
        gates.is_this_run
    from gates
    inner join chosen
        on gates.run_id = chosen.run_id
)

select * from final
order by quarantined_share desc nulls last, table_name
