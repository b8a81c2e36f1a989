-- A first load into the empty fact: emptying it in this transaction lets the
-- rows skip the WAL (wal_level=minimal), and the primary key and the customer
-- index are built once after the insert instead of row by row. A full batch
-- tells every incremental table to recompute from the whole fact.
truncate gold.fact_sales;

alter table gold.fact_sales drop constraint fact_sales_pkey;

drop index gold.fact_sales_customer_idx;

insert into gold.fact_sales (
    order_id, customer_id, customer_key, product_key, date_key, region, quantity, unit_price, amount, order_date,
    _extract_date
)
{model};

alter table gold.fact_sales add constraint fact_sales_pkey primary key (order_id);

create index fact_sales_customer_idx on gold.fact_sales (customer_id);

insert into gold.fact_sales_batches (changed_lines, delta_lines, is_full)
select count(*), 0, true from gold.fact_sales;

analyze gold.fact_sales;
