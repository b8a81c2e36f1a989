-- The fact rows of the date that differ from the fact: new order lines, and
-- lines whose version, product, region, measures, date or extract changed, with
-- the customer the fact had for them.
create temp table changed_facts on commit drop as
with

fact_rows as (
    {model}
)

select
    fact_rows.*,
    current_row.order_id is not null as had_before,
    current_row.customer_id as before_customer_id
from fact_rows
left join gold.fact_sales as current_row
    on fact_rows.order_id = current_row.order_id
where (current_row.customer_id, current_row.customer_key, current_row.product_key, current_row.date_key,
       current_row.region, current_row.quantity, current_row.unit_price, current_row.amount,
       current_row.order_date, current_row._extract_date)
    is distinct from (fact_rows.customer_id, fact_rows.customer_key, fact_rows.product_key, fact_rows.date_key,
                      fact_rows.region, fact_rows.quantity, fact_rows.unit_price, fact_rows.amount,
                      fact_rows.order_date, fact_rows._extract_date)
