-- Keys silver holds that the snapshot lacks are deleted at the snapshot's time.
-- A row merged from a later load than the snapshot was seen after it: not deleted.
insert into silver.deletions (source_table, business_key, deleted_at, deleted_load_id)
select
    {table},
    current_row.{key},
    watermarks.extracted_at,
    watermarks.load_id
from {target} as current_row
cross join meta.source_watermarks as watermarks
where watermarks.load_id = %(snapshot_load)s
    and current_row._load_id <= watermarks.load_id
    and not exists (
        select 1 from bronze.source_key_snapshots as snapshot
        where snapshot.load_id = watermarks.load_id
            and snapshot.business_key = current_row.{key}
    )
    and not exists (
        select 1 from silver.deletions as open_deletion
        where open_deletion.source_table = {table}
            and open_deletion.business_key = current_row.{key}
            and open_deletion.restored_at is null
    )
