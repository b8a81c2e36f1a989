-- A table recomputed from the whole fact reads the same names as a catch-up
-- (fact_delta.sql): every line is new, none is old, no line changed and no
-- customer is "affected" (the table was emptied; their parameter `full` is true).
create temp view new_facts as
select
    order_id,
    customer_id,
    product_key,
    region,
    quantity,
    amount,
    order_date
from gold.fact_sales;

create temp view old_facts as
select * from new_facts where false;

create temp view changed_lines as
select customer_id, product_key, region, order_date from new_facts where false;

create temp view affected_customers as
select customer_id from new_facts where false;
