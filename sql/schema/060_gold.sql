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
-- end of the order date (the first version for orders older than it).
create table if not exists gold.fact_sales (
    order_id text primary key,
    customer_id text not null,
    customer_key bigint not null,
    product_key bigint not null,
    date_key integer not null,
    quantity integer not null,
    unit_price numeric(12, 2) not null,
    amount numeric(14, 2) not null,
    order_date date not null,
    _extract_date date not null
);
