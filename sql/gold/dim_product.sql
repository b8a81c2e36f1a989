-- Type 1: the product's current attributes; the surrogate key never changes. A
-- product deleted at a database source keeps its row (facts refer to it) with
-- is_deleted and deleted_at, as silver has them. Written by upsert on product_id.
with

changed as (
    select
        product_id,
        product_name,
        category,
        unit_cost,
        list_price,
        is_deleted,
        updated_at,
        deleted_at
    from silver.products
    -- the date's products, and those it knew that a later extract already replaced in
    -- silver (its facts need them before the later date's task runs)
    where _extract_date = %(date)s
        or (first_extract_date <= %(date)s and _extract_date > %(date)s)
        -- products whose deletion, or return, the date's extract saw
        or product_id in (
            select deletion.business_key
            from silver.deletions as deletion
            inner join meta.ingested_files as files
                on files.load_id in (deletion.deleted_load_id, deletion.restored_load_id)
            where deletion.source_table = 'silver.products'
                and files.extract_date = %(date)s
        )
)

select * from changed
