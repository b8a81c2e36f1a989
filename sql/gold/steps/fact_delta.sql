-- What an incremental table reads to catch up with the fact: the delta rows of
-- the batches after its watermark. Every aggregate kept this way is a sum over
-- customers (a customer counts 1 or 0 in a group's distinct customers), so for
-- each batch F(its +1 rows) - F(its -1 rows), summed over the batches, is the
-- change a recompute over the whole fact would show. A group's distinct
-- customers can only change for a customer with a changed line in the group;
-- the aggregates whose groups allow it read only those customers' lines in
-- those groups (when their parameter `full` is false).
create temp view fact_lines as
select
    batch_id,
    customer_id,
    product_key,
    region,
    sign,
    quantity,
    amount,
    is_changed,
    order_date
from gold.fact_sales_delta
where batch_id > %(watermark)s
    and batch_id <= %(latest)s
