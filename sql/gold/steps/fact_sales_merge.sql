-- Write the changed rows as batch %(batch_id)s: the lines of every customer with
-- a changed line go to gold.fact_sales_delta, a changed line as it was (sign -1)
-- and as it is now (sign +1), an unchanged one once (sign 0), for the
-- incremental tables; then the fact takes the changed rows.
create temp table batch_customers on commit drop as
select customer_id from changed_facts
union
select before_customer_id from changed_facts where had_before;

insert into gold.fact_sales_delta (batch_id, customer_id, product_key, region, sign, quantity, amount, order_date)
with

customer_lines as (
    select
        customer_id,
        product_key,
        region,
        case when order_id in (select order_id from changed_facts) then -1 else 0 end as sign,
        quantity,
        amount,
        order_date
    from gold.fact_sales
    where customer_id in (select customer_id from batch_customers)
),

final as (
    select * from customer_lines
    union all
    select customer_id, product_key, region, 1 as sign, quantity, amount, order_date
    from changed_facts
)

select %(batch_id)s, * from final;

update gold.fact_sales_batches
set delta_lines = (select count(*) from gold.fact_sales_delta where batch_id = %(batch_id)s)
where batch_id = %(batch_id)s;

-- the incremental tables plan their reads of the batch on these statistics
analyze gold.fact_sales_delta;

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
where not had_before
