-- Per product: order lines, quantity sold, distinct customers, revenue, average unit price.
delete from gold.product_analytics;

with

per_product as (
    select
        product_key,
        count(*) as total_orders,
        sum(quantity) as total_quantity_sold,
        count(distinct customer_id) as customers,
        sum(amount) as revenue
    from gold.fact_sales
    group by product_key
),

final as (
    select
        per_product.product_key,
        dim_product.product_id,
        dim_product.product_name,
        dim_product.category,
        per_product.total_orders,
        per_product.total_quantity_sold,
        per_product.customers,
        per_product.revenue,
        round(per_product.revenue / nullif(per_product.total_quantity_sold, 0), 2) as average_unit_price
    from per_product
    inner join gold.dim_product
        on per_product.product_key = dim_product.product_key
)

insert into gold.product_analytics
select * from final
