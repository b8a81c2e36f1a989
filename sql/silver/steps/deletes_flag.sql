-- silver's flags follow the open deletions (those whose key has not come back).
update {target} as current_row
set
    is_deleted = true,
    deleted_at = open_deletion.deleted_at
from silver.deletions as open_deletion
where open_deletion.source_table = {table}
    and open_deletion.restored_at is null
    and open_deletion.business_key = current_row.{key}
    and (current_row.is_deleted, current_row.deleted_at) is distinct from (true, open_deletion.deleted_at);

update {target} as current_row
set
    is_deleted = false,
    deleted_at = null
where current_row.is_deleted
    and not exists (
        select 1 from silver.deletions as open_deletion
        where open_deletion.source_table = {table}
            and open_deletion.restored_at is null
            and open_deletion.business_key = current_row.{key}
    )
