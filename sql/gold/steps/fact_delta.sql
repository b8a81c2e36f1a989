-- What an incremental table needs to catch up with the fact since it last did
-- (its watermark): the customers whose order lines changed since, their lines
-- now (new_facts), and their lines as they were at the watermark (old_facts).
-- A line's state at the watermark is the before-row of its first change after
-- it; a line with no change since is as it is now. Every aggregate kept this way
-- is a sum over customers, so applying F(new_facts) - F(old_facts) to it gives
-- what a recompute over the whole fact would.
create temp table pending_changes on commit drop as
select distinct on (order_id)
    order_id,
    customer_id,
    product_key,
    region,
    quantity,
    amount,
    had_before,
    order_date
from gold.fact_sales_changes
where change_id > %(watermark)s
    and change_id <= %(latest)s
    and not is_full
order by order_id, change_id;

-- The changed lines as they are now and as they were. A group's distinct
-- customers can only change for a customer with a changed line in the group;
-- the aggregates whose groups allow it read only those customers' lines in those
-- groups (when their parameter `full` is false).
create temp table changed_lines on commit drop as
select customer_id, product_key, region, order_date
from gold.fact_sales
where order_id in (select order_id from pending_changes)
union all
select customer_id, product_key, region, order_date
from pending_changes
where had_before;

create temp table affected_customers on commit drop as
select distinct customer_id
from changed_lines;

create temp table new_facts on commit drop as
select
    order_id,
    customer_id,
    product_key,
    region,
    quantity,
    amount,
    order_date
from gold.fact_sales
where customer_id in (select customer_id from affected_customers);

create temp table old_facts on commit drop as
select *
from new_facts
where order_id not in (select order_id from pending_changes)
union all
select
    order_id,
    customer_id,
    product_key,
    region,
    quantity,
    amount,
    order_date
from pending_changes
where had_before;
