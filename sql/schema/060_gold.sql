-- Gold: the star schema. Facts and aggregates follow in their own files.

create table if not exists gold.dim_date (
    date_key integer primary key,  -- yyyymmdd
    day_of_week smallint not null,  -- ISO: 1 = Monday
    iso_week smallint not null,
    month smallint not null,
    quarter smallint not null,
    year smallint not null,
    is_weekend boolean not null,
    date date not null unique,
    month_start date not null
);

create table if not exists gold.dim_product (
    product_key bigint generated always as identity primary key,
    product_id text not null unique,
    product_name text,
    category text,
    unit_cost numeric(12, 2),
    list_price numeric(12, 2),
    updated_at timestamptz
);
-- Type 1, so a product deleted at its source keeps its row (its facts refer to it), flagged.
alter table gold.dim_product add column if not exists is_deleted boolean not null default false;
alter table gold.dim_product add column if not exists deleted_at timestamptz;

-- SCD Type 2. A version is valid from its updated_at (inclusive) to the next
-- version's updated_at (exclusive); valid_to is null for the current version.
create table if not exists gold.dim_customer (
    customer_key bigint generated always as identity primary key,
    customer_id text not null,
    first_name text,
    last_name text,
    email text,
    phone text,
    city text,
    state text,
    region text,
    attribute_hash text not null,  -- md5 of the tracked attributes
    is_current boolean not null,
    valid_from timestamptz not null,
    valid_to timestamptz,
    unique (customer_id, valid_from)
);

-- One row per order line. customer_key is the customer's version valid at the
-- end of the order date (the first version for orders older than it), region
-- that version's region: the fact carries it so that a change of a version's
-- region in place is a change of the fact, which the incremental aggregates see.
create table if not exists gold.fact_sales (
    order_id text primary key,
    customer_id text not null,
    customer_key bigint not null,
    product_key bigint not null,
    date_key integer not null,
    region text not null,
    quantity integer not null,
    unit_price numeric(12, 2) not null,
    amount numeric(14, 2) not null,
    order_date date not null,
    _extract_date date not null
);

-- A warehouse built before the fact carried the region gets it once, from the dimension.
do $$
begin
    if not exists (
        select 1 from information_schema.columns
        where table_schema = 'gold' and table_name = 'fact_sales' and column_name = 'region'
    ) then
        alter table gold.fact_sales add column region text;
        update gold.fact_sales
        set region = coalesce(dim_customer.region, 'Unknown')
        from gold.dim_customer
        where fact_sales.customer_key = dim_customer.customer_key;
        alter table gold.fact_sales alter column region set not null;
    end if;
end
$$;

-- The incremental tables find a customer's facts through this index (FactSales
-- drops and rebuilds it around a first load, which is faster than keeping it).
create index if not exists fact_sales_customer_idx on gold.fact_sales (customer_id);

-- The tables kept incrementally from the fact read what FactSales changed in
-- it. Each FactSales write that changes lines is a batch; for every customer
-- with a changed line, the batch holds all their lines: a changed line as it
-- was (sign -1) and as it is (sign +1), an unchanged one once (sign 0: the same
-- before and after). A first load into an empty fact is one is_full batch with
-- no lines: every incremental table recomputes from the whole fact. Delta rows
-- every table has applied are pruned.
drop table if exists gold.fact_sales_changes, gold.fact_sales_consumers;  -- an earlier form of the log
do $$
begin
    if exists (
        select 1 from information_schema.columns
        where table_schema = 'gold' and table_name = 'fact_sales_delta' and column_name = 'is_changed'
    ) then
        drop table gold.fact_sales_delta, gold.fact_sales_batches, gold.fact_sales_watermarks;  -- an earlier form
    end if;
end
$$;

create table if not exists gold.fact_sales_batches (
    batch_id bigint generated always as identity primary key,
    changed_lines bigint not null,  -- order lines new or changed in the fact
    delta_lines bigint not null,  -- rows in gold.fact_sales_delta
    is_full boolean not null,
    created_at timestamptz not null default now()
);

create table if not exists gold.fact_sales_delta (
    batch_id bigint not null,
    customer_id text not null,
    product_key bigint not null,
    region text not null,
    sign smallint not null check (sign in (-1, 0, 1)),
    quantity integer not null,
    amount numeric(14, 2) not null,
    order_date date not null
);
create index if not exists fact_sales_delta_batch_idx on gold.fact_sales_delta (batch_id);

-- The last batch each incremental table has applied. A table with no row here
-- (or behind a full batch) is recomputed from the whole fact.
create table if not exists gold.fact_sales_watermarks (
    consumer text primary key,  -- the table kept incrementally
    batch_id bigint not null
);

-- Aggregates and marts, kept incrementally from the fact: a run applies the
-- difference between the affected customers' lines after and before each batch
-- since the table last caught up (gold.fact_sales_delta), so that whatever
-- dates ran, in whatever order, each equals a recompute from the fact as a whole.
-- Region is the customer's region in the version valid at the order date.
create table if not exists gold.agg_daily_sales (
    date_key integer not null,
    region text not null,
    orders bigint not null,
    customers bigint not null,
    quantity bigint not null,
    revenue numeric(16, 2) not null,
    order_date date not null,
    primary key (order_date, region)
);

create table if not exists gold.agg_monthly_sales (
    region text not null,
    orders bigint not null,
    customers bigint not null,
    quantity bigint not null,
    revenue numeric(16, 2) not null,
    month_start date not null,
    primary key (month_start, region)
);

create table if not exists gold.customer_analytics (
    region text primary key,
    customers bigint not null,
    orders bigint not null,
    revenue numeric(16, 2) not null,
    average_order_value numeric(14, 2),
    revenue_share numeric(7, 6)
);

create table if not exists gold.product_analytics (
    product_key bigint primary key,
    product_id text not null,
    product_name text,
    category text,
    total_orders bigint not null,
    total_quantity_sold bigint not null,
    customers bigint not null,
    revenue numeric(16, 2) not null,
    average_unit_price numeric(12, 2)  -- revenue / quantity sold
);

-- The fact with the customer's region at the order date (now a column of the
-- fact itself; the view stays for readers of the earlier schema).
create or replace view gold.fact_sales_by_region as
select * from gold.fact_sales;

-- Cohort = month of the customer's first purchase; per cohort and month since.
create table if not exists gold.cohort_retention (
    months_since_first integer not null,
    cohort_size bigint not null,
    active_customers bigint not null,
    retention_rate numeric(7, 6) not null,  -- active / cohort size; 1 in month 0
    revenue numeric(16, 2) not null,
    cohort_month date not null,
    primary key (cohort_month, months_since_first)
);

-- Per customer, over every order line of the fact: what the CLV summary and the
-- KPIs of a date need when no order line is dated after it (CustomerClv and
-- BusinessKpis keep it up to date incrementally; a date with later order lines
-- is computed from the fact instead).
create table if not exists gold.customer_purchase_summary (
    customer_id text primary key,
    orders bigint not null,  -- order lines
    purchase_days integer not null,  -- distinct order dates
    first_day_revenue numeric(16, 2) not null,
    revenue numeric(16, 2) not null,
    first_order_date date not null,
    last_order_date date not null
);

-- Customer lifetime value as of a run date (see README for the conventions).
create table if not exists gold.customer_clv (
    customer_id text not null,
    frequency integer not null,  -- purchase days after the first
    recency numeric(12, 4) not null,  -- first to last purchase day, in clv_model.time_unit
    t numeric(12, 4) not null,  -- first purchase day to the as-of date
    monetary_value numeric(14, 2) not null,  -- mean total of the repeat purchase days
    historical_clv numeric(16, 2) not null,  -- total spend to the as-of date
    expected_purchases numeric(14, 6),  -- null when the models could not be fit
    p_alive numeric(7, 6),
    expected_avg_spend numeric(14, 2),
    predicted_clv numeric(16, 2),
    as_of_date date not null,
    primary key (as_of_date, customer_id)
);

create table if not exists gold.clv_model (
    model text not null check (model in ('bg_nbd', 'gamma_gamma')),
    time_unit text not null check (time_unit in ('days', 'weeks')),
    params jsonb,  -- r, alpha, a, b | p, q, gamma; null when the fit failed
    log_likelihood double precision,
    n_customers bigint not null,
    message text,
    as_of_date date not null,
    primary key (as_of_date, model)
);
-- The penalty of the fit (lambda on the total -log-likelihood, 0 for plain maximum
-- likelihood; pipeline/clv/models.py) and why: 'none: ...', 'fallback: ...', 'configured: ...'.
alter table gold.clv_model add column if not exists penalizer double precision;
alter table gold.clv_model add column if not exists penalizer_reason text;

-- Headline figures per run date, over every order up to that date.
create table if not exists gold.business_kpis (
    orders bigint not null,  -- order lines
    customers bigint not null,  -- customers who ever bought
    active_customers bigint not null,  -- bought in the 90 days up to the date
    revenue numeric(16, 2) not null,
    average_order_value numeric(14, 2),
    repeat_purchase_rate numeric(7, 6),  -- customers with more than one purchase day / customers
    average_historical_clv numeric(14, 2),
    average_predicted_clv numeric(14, 2),
    quality_score numeric(7, 6),  -- the run score of the date's latest quality gate
    run_date date primary key
);
