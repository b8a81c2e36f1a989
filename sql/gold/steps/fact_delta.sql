-- What an incremental table reads to catch up with the fact: the delta rows of
-- the batches after its watermark, an unchanged line (sign 0) once on each side.
-- Every aggregate kept this way is a sum over customers (a customer counts 1 or
-- 0 in a group's distinct customers), so for each batch F(its +1 lines) -
-- F(its -1 lines), summed over the batches, is the change a recompute over the
-- whole fact would show. A group's distinct customers can only change for a
-- customer with a changed line in the group; the aggregates whose groups allow
-- it read only those customers' lines in those groups (when their parameter
-- `full` is false).
create temp view fact_lines as
select
    fact_sales_delta.batch_id,
    fact_sales_delta.customer_id,
    fact_sales_delta.product_key,
    fact_sales_delta.region,
    sides.sign,
    fact_sales_delta.quantity,
    fact_sales_delta.amount,
    fact_sales_delta.sign <> 0 as is_changed,
    fact_sales_delta.order_date
from gold.fact_sales_delta
inner join (values (-1::smallint), (1::smallint)) as sides (sign)
    on fact_sales_delta.sign in (0, sides.sign)
where fact_sales_delta.batch_id > %(watermark)s
    and fact_sales_delta.batch_id <= %(latest)s
