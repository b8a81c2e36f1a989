-- Changes every incremental table has applied, and changes older than the last
-- full rebuild (a table behind it recomputes from the whole fact anyway).
delete from gold.fact_sales_changes
where change_id <= (select min(change_id) from gold.fact_sales_consumers)
    or change_id < (select max(change_id) from gold.fact_sales_changes where is_full)
