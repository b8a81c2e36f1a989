-- Bronze: an audited raw copy of every extract. Source columns stay text.
--
-- Rows are stored once per load in <source>_raw_rows with only the load id and
-- the line number beside the file's fields; the per-file audit values (run,
-- file, sha256, time, extract date) live once in meta.ingested_files. The
-- contract's bronze.<source>_raw is the view that joins the two, so readers
-- see every audit column without bronze storing the same five values on each
-- of millions of rows (a third of the load time and most of the table size).

create table if not exists bronze.crm_customers_raw_rows (
    customer_id text,
    first_name text,
    last_name text,
    email text,
    phone text,
    address text,
    city text,
    state text,
    region text,
    signup_date text,
    updated_at text,
    _load_id bigint not null,
    _line_number bigint not null
);
-- BRIN: loads append in _load_id order, so the index costs almost nothing to keep.
-- File columns outside the contract, kept as one object (sources.toml extra_columns = "keep").
alter table bronze.crm_customers_raw_rows add column if not exists _extra jsonb;
create index if not exists crm_customers_raw_rows_load_idx on bronze.crm_customers_raw_rows using brin (_load_id);

create or replace view bronze.crm_customers_raw as
    select
        raw_rows.customer_id,
        raw_rows.first_name,
        raw_rows.last_name,
        raw_rows.email,
        raw_rows.phone,
        raw_rows.address,
        raw_rows.city,
        raw_rows.state,
        raw_rows.region,
        raw_rows.signup_date,
        raw_rows.updated_at,
        ingested_files.run_id as _run_id,
        ingested_files.source_file as _source_file,
        raw_rows._line_number,
        ingested_files.file_sha256 as _file_sha256,
        ingested_files.ingested_at as _ingested_at,
        raw_rows._load_id,
        ingested_files.extract_date as _extract_date,
        raw_rows._extra
    from bronze.crm_customers_raw_rows as raw_rows
    inner join meta.ingested_files as ingested_files
        on raw_rows._load_id = ingested_files.load_id;

create table if not exists bronze.erp_products_raw_rows (
    product_id text,
    product_name text,
    category text,
    unit_cost text,
    list_price text,
    updated_at text,
    _load_id bigint not null,
    _line_number bigint not null
);
-- BRIN: loads append in _load_id order, so the index costs almost nothing to keep.
-- File columns outside the contract, kept as one object (sources.toml extra_columns = "keep").
alter table bronze.erp_products_raw_rows add column if not exists _extra jsonb;
create index if not exists erp_products_raw_rows_load_idx on bronze.erp_products_raw_rows using brin (_load_id);

create or replace view bronze.erp_products_raw as
    select
        raw_rows.product_id,
        raw_rows.product_name,
        raw_rows.category,
        raw_rows.unit_cost,
        raw_rows.list_price,
        raw_rows.updated_at,
        ingested_files.run_id as _run_id,
        ingested_files.source_file as _source_file,
        raw_rows._line_number,
        ingested_files.file_sha256 as _file_sha256,
        ingested_files.ingested_at as _ingested_at,
        raw_rows._load_id,
        ingested_files.extract_date as _extract_date,
        raw_rows._extra
    from bronze.erp_products_raw_rows as raw_rows
    inner join meta.ingested_files as ingested_files
        on raw_rows._load_id = ingested_files.load_id;

create table if not exists bronze.erp_sales_raw_rows (
    order_id text,
    customer_id text,
    product_id text,
    order_date text,
    quantity text,
    unit_price text,
    _load_id bigint not null,
    _line_number bigint not null
);
-- BRIN: loads append in _load_id order, so the index costs almost nothing to keep.
-- File columns outside the contract, kept as one object (sources.toml extra_columns = "keep").
alter table bronze.erp_sales_raw_rows add column if not exists _extra jsonb;
create index if not exists erp_sales_raw_rows_load_idx on bronze.erp_sales_raw_rows using brin (_load_id);

create or replace view bronze.erp_sales_raw as
    select
        raw_rows.order_id,
        raw_rows.customer_id,
        raw_rows.product_id,
        raw_rows.order_date,
        raw_rows.quantity,
        raw_rows.unit_price,
        ingested_files.run_id as _run_id,
        ingested_files.source_file as _source_file,
        raw_rows._line_number,
        ingested_files.file_sha256 as _file_sha256,
        ingested_files.ingested_at as _ingested_at,
        raw_rows._load_id,
        ingested_files.extract_date as _extract_date,
        raw_rows._extra
    from bronze.erp_sales_raw_rows as raw_rows
    inner join meta.ingested_files as ingested_files
        on raw_rows._load_id = ingested_files.load_id;
