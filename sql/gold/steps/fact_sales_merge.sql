-- The fact rows of the date that differ from the fact (new order lines, and
-- lines whose version, product, region, measures, date or extract changed), with
-- the fact's row as it was; that row goes to gold.fact_sales_changes for the
-- incremental tables, then the fact takes the new one.
create temp table changed_facts on commit drop as
with

fact_rows as (
    {model}
)

select
    fact_rows.*,
    current_row.order_id is not null as had_before,
    current_row.customer_id as before_customer_id,
    current_row.product_key as before_product_key,
    current_row.region as before_region,
    current_row.quantity as before_quantity,
    current_row.amount as before_amount,
    current_row.order_date as before_order_date
from fact_rows
left join gold.fact_sales as current_row
    on fact_rows.order_id = current_row.order_id
where (current_row.customer_id, current_row.customer_key, current_row.product_key, current_row.date_key,
       current_row.region, current_row.quantity, current_row.unit_price, current_row.amount,
       current_row.order_date, current_row._extract_date)
    is distinct from (fact_rows.customer_id, fact_rows.customer_key, fact_rows.product_key, fact_rows.date_key,
                      fact_rows.region, fact_rows.quantity, fact_rows.unit_price, fact_rows.amount,
                      fact_rows.order_date, fact_rows._extract_date);

insert into gold.fact_sales_changes (order_id, customer_id, product_key, region, quantity, amount, had_before,
                                     order_date)
select
    order_id,
    before_customer_id,
    before_product_key,
    before_region,
    before_quantity,
    before_amount,
    had_before,
    before_order_date
from changed_facts
order by order_id;

update gold.fact_sales as current_row
set
    customer_id = changed.customer_id,
    customer_key = changed.customer_key,
    product_key = changed.product_key,
    date_key = changed.date_key,
    region = changed.region,
    quantity = changed.quantity,
    unit_price = changed.unit_price,
    amount = changed.amount,
    order_date = changed.order_date,
    _extract_date = changed._extract_date
from changed_facts as changed
where changed.had_before
    and current_row.order_id = changed.order_id;

insert into gold.fact_sales (
    order_id, customer_id, customer_key, product_key, date_key, region, quantity, unit_price, amount, order_date,
    _extract_date
)
select
    order_id,
    customer_id,
    customer_key,
    product_key,
    date_key,
    region,
    quantity,
    unit_price,
    amount,
    order_date,
    _extract_date
from changed_facts
where not had_before;
