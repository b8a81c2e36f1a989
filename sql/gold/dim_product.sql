-- Type 1: the product's current attributes; the surrogate key never changes. A
-- product deleted at a database source keeps its row (facts refer to it) with
-- is_deleted and deleted_at, as silver has them.
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

insert into gold.dim_product (
    product_id, product_name, category, unit_cost, list_price, is_deleted, updated_at, deleted_at
)
select * from changed
on conflict (product_id) do update set
    product_name = excluded.product_name,
    category = excluded.category,
    unit_cost = excluded.unit_cost,
    list_price = excluded.list_price,
    is_deleted = excluded.is_deleted,
    updated_at = excluded.updated_at,
    deleted_at = excluded.deleted_at
where (gold.dim_product.product_name, gold.dim_product.category, gold.dim_product.unit_cost,
       gold.dim_product.list_price, gold.dim_product.is_deleted, gold.dim_product.updated_at,
       gold.dim_product.deleted_at)
    is distinct from (excluded.product_name, excluded.category, excluded.unit_cost, excluded.list_price,
                      excluded.is_deleted, excluded.updated_at, excluded.deleted_at)
