-- Type 1: the product's current attributes; the surrogate key never changes.
with

changed as (
    select
        product_id,
        product_name,
        category,
        unit_cost,
        list_price,
        updated_at
    from silver.products
    -- the date's products, and those it knew that a later extract already replaced in
    -- silver (its facts need them before the later date's task runs)
    where _extract_date = %(date)s
        or (first_extract_date <= %(date)s and _extract_date > %(date)s)
)

insert into gold.dim_product (product_id, product_name, category, unit_cost, list_price, updated_at)
select * from changed
on conflict (product_id) do update set
    product_name = excluded.product_name,
    category = excluded.category,
    unit_cost = excluded.unit_cost,
    list_price = excluded.list_price,
    updated_at = excluded.updated_at
where (gold.dim_product.product_name, gold.dim_product.category, gold.dim_product.unit_cost,
       gold.dim_product.list_price, gold.dim_product.updated_at)
    is distinct from (excluded.product_name, excluded.category, excluded.unit_cost, excluded.list_price,
                      excluded.updated_at)
