-- Lines placed twice. The quarantine and duplicate records are few, so they are
-- compared with each other and with silver's lines rather than sorting every line.
with

recorded as (
    select load_id, line_number from silver.quarantine
    where stage = 'silver' and source_table = %(table)s and load_id = any(%(loads)s)
    union all
    select load_id, line_number from silver.duplicates
    where source_table = %(table)s and load_id = any(%(loads)s)
)

select
    (
        select count(*) from (
            select 1 from recorded group by load_id, line_number having count(*) > 1
        ) as twice
    )
    + (
        select count(*) from recorded
        where (load_id, line_number) in (
            select _load_id, _line_number from {target} where _load_id = any(%(loads)s)
        )
    )
