-- After the snapshot is applied every silver row is either live and in the
-- snapshot (or seen after it) or deleted and absent from it: counted both ways.
with

snapshot_keys as (
    select business_key from bronze.source_key_snapshots
    where load_id = %(snapshot_load)s
),

silver_rows as (
    select
        current_row.is_deleted,
        current_row._load_id <= %(snapshot_load)s as is_before_snapshot,
        current_row.{key} in (select business_key from snapshot_keys) as is_in_snapshot
    from {target} as current_row
)

select
    count(*) filter (where is_deleted) as flagged,
    (
        select count(*) from silver.deletions
        where source_table = {table} and restored_at is null
    ) as open_deletions,
    count(*) filter (where not is_deleted and is_before_snapshot and not is_in_snapshot) as missed,
    count(*) filter (where is_deleted and is_in_snapshot) as wrongly_deleted
from silver_rows
