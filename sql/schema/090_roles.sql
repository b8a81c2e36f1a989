-- The console's read-only role and what it may read.
--
-- Business pages connect as metalayer_reader. It reads gold and meta, silver
-- without the personal columns, and the masked views below; never bronze, never
-- silver.quarantine (its records hold whole source lines), never an email or a
-- phone number. Masking is done here, in views, so a page cannot forget it.
--
-- Idempotent. The role belongs to the server, not the database: a bootstrap of
-- another database may create it at the same moment (the error is caught), and a
-- bootstrap user that may not create roles leaves it out (the console then reads
-- as that user, through the same masked views). The embedded server trusts local
-- sockets, so the role needs no password there; on a server with password
-- authentication the console sets METALAYER_READER_PASSWORD on it.

create schema if not exists console;

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'metalayer_reader') then
        if exists (select 1 from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)) then
            begin
                create role metalayer_reader login nosuperuser nocreatedb nocreaterole noinherit;
            exception when duplicate_object or unique_violation then
                null;
            end;
        else
            raise notice 'role metalayer_reader not created: % may not create roles', current_user;
        end if;
    end if;
end
$$;

-- Masking ----------------------------------------------------------------------------------------

-- a***@example.com: the first character and the domain stay, to tell addresses apart.
create or replace function console.mask_email(email text) returns text
language sql immutable parallel safe as $$
    select case
        when email is null then null
        when strpos(btrim(email), '@') > 1 then left(btrim(email), 1) || '***@' || split_part(btrim(email), '@', 2)
        else '***'
    end
$$;

-- ***23: the last two digits only.
create or replace function console.mask_phone(phone text) returns text
language sql immutable parallel safe as $$
    select case
        when phone is null then null
        when length(regexp_replace(phone, '\D', '', 'g')) >= 4 then '***' || right(regexp_replace(phone, '\D', '', 'g'), 2)
        else '***'
    end
$$;

create or replace function console.mask_name(name text) returns text
language sql immutable parallel safe as $$
    select case when nullif(btrim(name), '') is null then name else left(btrim(name), 1) || '***' end
$$;

-- Free text (raw source lines, reasons, errors, logs): e-mail addresses and
-- phone numbers in any of the common styles, standing as their own word; dates,
-- counts and identifiers that contain digits (run ids: ...T151534-1234ab) stay readable.
create or replace function console.mask_text(body text) returns text
language sql immutable parallel safe as $$
    select regexp_replace(
        regexp_replace(body, '[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)', '***@\1', 'g'),
        '(?<![0-9A-Za-z_])(\+?[0-9]{1,3}[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}(?![0-9A-Za-z_])', '***', 'g')
$$;

-- Row counts of warehouse tables, for the console's rows per layer: a count shows
-- no value, so the reader may have it for tables it cannot read (the owner counts:
-- security definer). Tables of the bronze, silver and gold schemas only.
create or replace function console.table_rows(tables text[])
returns table (table_name text, row_count bigint)
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
    name text;
begin
    foreach name in array tables loop
        if split_part(name, '.', 1) not in ('bronze', 'silver', 'gold') or split_part(name, '.', 3) <> '' then
            raise exception 'console.table_rows counts tables of bronze, silver and gold only, not %', name;
        end if;
        table_name := name;
        execute format('select count(*) from %I.%I', split_part(name, '.', 1), split_part(name, '.', 2))
            into row_count;
        return next;
    end loop;
end
$$;
revoke execute on function console.table_rows(text[]) from public;

-- A quarantine record with its personal fields masked (the keys are the source's column names).
create or replace function console.mask_record(record jsonb) returns jsonb
language sql immutable parallel safe as $$
    select case when record is null or jsonb_typeof(record) <> 'object' then record else (
        select coalesce(jsonb_object_agg(fields.key, case
            when jsonb_typeof(fields.value) <> 'string' then fields.value
            when fields.key = 'email' then to_jsonb(console.mask_email(fields.value #>> '{}'))
            when fields.key in ('phone', 'phone_raw') then to_jsonb(console.mask_phone(fields.value #>> '{}'))
            when fields.key in ('first_name', 'last_name') then to_jsonb(console.mask_name(fields.value #>> '{}'))
            when fields.key = 'address' then to_jsonb('***'::text)
            else to_jsonb(console.mask_text(fields.value #>> '{}'))
        end), '{}'::jsonb)
        from jsonb_each(record) as fields
    ) end
$$;

-- The customers the console names (current versions) and their masked twin, same columns.
create or replace view console.customer as
select
    customer_id,
    first_name,
    last_name,
    email,
    phone,
    city,
    state,
    region
from gold.dim_customer
where is_current;

create or replace view console.customer_masked as
select
    customer_id,
    console.mask_name(first_name) as first_name,
    console.mask_name(last_name) as last_name,
    console.mask_email(email) as email,
    console.mask_phone(phone) as phone,
    city,
    state,
    region
from console.customer;

-- silver.quarantine with the record and the reason masked, same columns.
create or replace view console.quarantine_masked as
select
    quarantine_id,
    run_id,
    stage,
    source_table,
    source_file,
    line_number,
    load_id,
    extract_date,
    business_key,
    rule_name,
    console.mask_text(reason) as reason,
    console.mask_record(record) as record,
    quarantined_at
from silver.quarantine;

-- Grants -----------------------------------------------------------------------------------------

do $$
declare
    readable record;
begin
    if not exists (select 1 from pg_roles where rolname = 'metalayer_reader') then
        return;
    end if;
    grant usage on schema gold, meta, silver, console to metalayer_reader;
    grant select on all tables in schema gold, meta to metalayer_reader;
    alter default privileges in schema gold, meta grant select on tables to metalayer_reader;
    grant select on console.customer_masked, console.quarantine_masked to metalayer_reader;
    grant execute on all functions in schema console to metalayer_reader;
    grant select on silver.sales, silver.products, silver.duplicates to metalayer_reader;
    -- Personal columns stay out: table-level select off, then every other column, read from the
    -- catalog (a column added to these tables is readable unless it is named here as personal).
    revoke select on gold.dim_customer, silver.customers from metalayer_reader;
    for readable in
        select table_schema, table_name, string_agg(quote_ident(column_name), ', ' order by ordinal_position) as names
        from information_schema.columns
        where (table_schema, table_name) in (('gold', 'dim_customer'), ('silver', 'customers'))
            and column_name <> all (array['first_name', 'last_name', 'email', 'phone', 'phone_raw', 'address'])
        group by table_schema, table_name
    loop
        execute format('grant select (%s) on %I.%I to metalayer_reader',
                       readable.names, readable.table_schema, readable.table_name);
    end loop;
    begin
        execute format('grant connect on database %I to metalayer_reader', current_database());
    exception when insufficient_privilege then
        raise notice 'connect on % not granted to metalayer_reader: %', current_database(), sqlerrm;
    end;
end
$$;
