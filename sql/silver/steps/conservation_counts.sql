select
    (select count(*) from {target} where _load_id = any(%(loads)s)) as in_silver,
    (
        select count(*) from silver.quarantine
        where stage = 'silver' and source_table = %(table)s and load_id = any(%(loads)s)
    ) as quarantined,
    (
        select count(*) from silver.duplicates
        where source_table = %(table)s and load_id = any(%(loads)s)
    ) as duplicates
