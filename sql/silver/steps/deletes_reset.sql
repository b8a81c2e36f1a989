-- Reprocessing a date: the deletions its snapshot found and the returns its lines
-- or snapshot saw are derived again.
delete from silver.deletions
where source_table = {table}
    and deleted_load_id = any(%(loads)s);

update silver.deletions
set
    restored_at = null,
    restored_load_id = null
where source_table = {table}
    and restored_load_id = any(%(loads)s)
