-- Silver: typed, cleaned, deduplicated current state, one row per business key.
-- Lineage columns say which bronze line a row came from; they hold no run ids or
-- timestamps, so reprocessing a date leaves silver byte for byte the same.

create table if not exists silver.customers (
    customer_id text primary key,
    first_name text,
    last_name text,
    email text not null,
    phone text,  -- E.164, null when the source number cannot be made valid
    phone_raw text,
    address text,
    city text,
    state text,
    region text,
    is_phone_valid boolean not null,
    signup_date date,
    first_extract_date date not null,  -- earliest extract that held the customer
    updated_at timestamptz,
    _extract_date date not null,
    _load_id bigint not null,
    _line_number bigint not null
);

create table if not exists silver.products (
    product_id text primary key,
    product_name text,
    category text,
    unit_cost numeric(12, 2),
    list_price numeric(12, 2),
    first_extract_date date not null,
    updated_at timestamptz,
    _extract_date date not null,
    _load_id bigint not null,
    _line_number bigint not null
);

create table if not exists silver.sales (
    order_id text primary key,
    customer_id text not null,
    product_id text not null,
    order_size text not null check (order_size in ('small', 'medium', 'large')),
    quantity integer not null,
    unit_price numeric(12, 2) not null,
    amount numeric(14, 2) not null,
    order_date date not null,
    _extract_date date not null,
    _load_id bigint not null,
    _line_number bigint not null
);

-- A date's rows by their load (conservation counts them after every merge). BRIN:
-- merges append in load order; the silver task summarizes the new pages.
create index if not exists customers_load_idx on silver.customers using brin (_load_id);
create index if not exists products_load_idx on silver.products using brin (_load_id);
create index if not exists sales_load_idx on silver.sales using brin (_load_id);

-- Lines that neither became the silver row of their key nor were quarantined:
-- exact copies of another line, older versions of a key (superseded), and rows
-- identical to what silver already holds (unchanged).
create table if not exists silver.duplicates (
    duplicate_id bigint generated always as identity primary key,
    run_id text not null,
    source_table text not null,
    load_id bigint not null,
    line_number bigint not null,
    extract_date date not null,
    business_key text,
    kind text not null check (kind in ('exact_duplicate', 'superseded', 'unchanged')),
    duplicate_of text not null,  -- the line or silver row that stands for this one
    recorded_at timestamptz not null default now()
);
create index if not exists duplicates_load_idx on silver.duplicates (load_id);

alter table meta.task_runs add column if not exists rows_duplicate bigint;

create table if not exists meta.quality_scores (
    run_id text not null,
    run_date date not null,
    table_name text not null,  -- '*' for the run as a whole
    dimension text not null,  -- 'overall' for the weighted table (or run) score
    score numeric(7, 6),
    rows_checked bigint not null,
    computed_at timestamptz not null default now(),
    primary key (run_id, run_date, table_name, dimension)  -- a run may score two dates (see quality_results)
);
do $$
begin
    if not exists (
        select 1 from information_schema.key_column_usage
        where constraint_schema = 'meta' and constraint_name = 'quality_scores_pkey' and column_name = 'run_date'
    ) then
        alter table meta.quality_scores
            drop constraint quality_scores_pkey, add primary key (run_id, run_date, table_name, dimension);
    end if;
end
$$;
create index if not exists quality_scores_date_idx on meta.quality_scores (run_date, table_name);

-- Every valid version of a customer ever extracted (silver.customers holds only
-- the newest). Rewritten per load, so reprocessing a date changes nothing; the
-- SCD2 customer dimension is derived from it, whatever order dates ran in.
create table if not exists silver.customer_versions (
    customer_id text not null,
    first_name text,
    last_name text,
    email text not null,
    phone text,
    phone_raw text,
    address text,
    city text,
    state text,
    region text,
    is_phone_valid boolean not null,
    signup_date date,
    updated_at timestamptz,
    _extract_date date not null,
    _load_id bigint not null,
    _line_number bigint not null,
    primary key (_load_id, _line_number)
);
create index if not exists customer_versions_customer_idx on silver.customer_versions (customer_id, updated_at);

-- A warehouse whose silver predates customer_versions starts its history from
-- the versions it holds (runs only while the history is empty).
insert into silver.customer_versions (
    customer_id, first_name, last_name, email, phone, phone_raw, address, city, state, region, is_phone_valid,
    signup_date, updated_at, _extract_date, _load_id, _line_number
)
select
    customer_id, first_name, last_name, email, phone, phone_raw, address, city, state, region, is_phone_valid,
    signup_date, updated_at, _extract_date, _load_id, _line_number
from silver.customers
where not exists (select 1 from silver.customer_versions);

-- Soft deletes (a database source's key snapshots, sources.toml key_snapshot_every):
-- a key absent from the source's latest snapshot stays in silver, flagged, with the
-- time of the snapshot that missed it. silver.deletions keeps every deletion, and
-- when the key came back (restored_at), for the SCD2 customer dimension.
alter table silver.customers add column if not exists is_deleted boolean not null default false;
alter table silver.customers add column if not exists deleted_at timestamptz;
alter table silver.products add column if not exists is_deleted boolean not null default false;
alter table silver.products add column if not exists deleted_at timestamptz;

create table if not exists silver.deletions (
    source_table text not null,  -- silver.customers | silver.products
    business_key text not null,
    deleted_at timestamptz not null,  -- the source's clock at the snapshot that missed the key
    deleted_load_id bigint not null,  -- the load holding that snapshot
    restored_at timestamptz,  -- the key's return: its new version's updated_at, else the extract's time
    restored_load_id bigint,
    primary key (source_table, business_key, deleted_at)
);
create index if not exists deletions_deleted_load_idx on silver.deletions (deleted_load_id);
create index if not exists deletions_restored_load_idx on silver.deletions (restored_load_id);
