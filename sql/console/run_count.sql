-- How many runs were ever recorded, and whether gold holds any figures.
select
    (select count(*) from meta.pipeline_runs) as runs,
    (select count(*) from gold.business_kpis) as kpi_dates
