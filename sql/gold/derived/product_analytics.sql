-- gold.product_analytics after its sums are caught up: the product's current
-- attributes (they change without any fact changing: dim_product is type 1) and
-- the average unit price (revenue / quantity sold).
with

final as (
    select
        product_analytics.product_key,
        dim_product.product_id,
        dim_product.product_name,
        dim_product.category,
        round(product_analytics.revenue / nullif(product_analytics.total_quantity_sold, 0), 2)
            as average_unit_price
    from gold.product_analytics
    inner join gold.dim_product
        on product_analytics.product_key = dim_product.product_key
)

select * from final
