-- Deleted keys this extract holds again (a surviving line, or the key in its
-- snapshot) are back: from the new version's updated_at when that is after the
-- deletion, else from the time of the extract that saw the key.
with

present as (
    select
        stage.{key} as business_key,
        stage._load_id as load_id,
        stage.updated_at
    from stage
    where stage.copy_number = 1
        and cardinality(stage.failed_drop) = 0

    union all

    select
        snapshot.business_key,
        snapshot.load_id,
        null::timestamptz as updated_at
    from bronze.source_key_snapshots as snapshot
    where snapshot.load_id = %(snapshot_load)s
),

returned as (
    select distinct on (deletion.business_key)
        deletion.business_key,
        deletion.deleted_at,
        present.load_id,
        case
            when present.updated_at > deletion.deleted_at then present.updated_at
            else watermarks.extracted_at
        end as restored_at
    from silver.deletions as deletion
    inner join present
        on deletion.business_key = present.business_key
    inner join meta.source_watermarks as watermarks
        on present.load_id = watermarks.load_id
    where deletion.source_table = {table}
        and deletion.restored_at is null
    order by deletion.business_key, present.load_id, present.updated_at nulls last
)

update silver.deletions as deletion
set
    restored_at = returned.restored_at,
    restored_load_id = returned.load_id
from returned
where deletion.source_table = {table}
    and deletion.business_key = returned.business_key
    and deletion.deleted_at = returned.deleted_at
