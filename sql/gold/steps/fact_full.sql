-- A table recomputed from the whole fact reads the same view as a catch-up
-- (fact_delta.sql): every line of the fact, once, as one batch of +1 rows
-- (their parameter `full` is true).
create temp view fact_lines as
select
    0::bigint as batch_id,
    customer_id,
    product_key,
    region,
    1::smallint as sign,
    quantity,
    amount,
    false as is_changed,
    order_date
from gold.fact_sales
