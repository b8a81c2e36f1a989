-- Delta rows every incremental table has applied, and rows of batches older than
-- the last full one (a table behind it recomputes from the whole fact anyway).
delete from gold.fact_sales_delta
where batch_id <= (select min(batch_id) from gold.fact_sales_watermarks)
    or batch_id < (select max(batch_id) from gold.fact_sales_batches where is_full)
