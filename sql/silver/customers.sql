-- Model of silver.customers for one extract date: every bronze line of the
-- date's customer loads, typed and cleaned, with its exact-copy number. The
-- silver task evaluates the quality rules on this and merges the survivors.
-- Parameters: %(date)s, %(calling_code)s, %(national_digits)s.
with

loads as (
    select
        load_id,
        extract_date
    from meta.ingested_files
    where source_name = 'crm_customers'
        and extract_date = %(date)s
),

source as (
    select
        raw_rows.*,
        loads.extract_date as _extract_date
    from bronze.crm_customers_raw_rows as raw_rows
    inner join loads
        on raw_rows._load_id = loads.load_id
),

exact_copies as (
    select
        source.*,
        row_number() over same_line as copy_number,
        first_value(source._load_id || ':' || source._line_number) over same_line as first_copy
    from source
    window same_line as (
        partition by
            customer_id, first_name, last_name, email, phone, address, city, state, region, signup_date,
            updated_at
        order by _load_id, _line_number
    )
),

final as (
    select
        nullif(btrim(customer_id), '') as customer_id,
        silver.clean_name(first_name) as first_name,
        silver.clean_name(last_name) as last_name,
        silver.clean_email(email) as email,
        silver.phone_e164(phone, %(calling_code)s, %(national_digits)s) as phone,
        nullif(btrim(phone), '') as phone_raw,
        nullif(regexp_replace(btrim(address), '[ \t]+', ' ', 'g'), '') as address,
        silver.clean_name(city) as city,
        upper(nullif(btrim(state), '')) as state,
        silver.canonical_region(region) as region,
        nullif(btrim(region), '') as region_raw,
        silver.phone_e164(phone, %(calling_code)s, %(national_digits)s) is not null as is_phone_valid,
        silver.parse_date(signup_date) as signup_date,
        nullif(btrim(signup_date), '') as signup_date_raw,
        silver.parse_timestamp(updated_at) as updated_at,
        nullif(btrim(updated_at), '') as updated_at_raw,
        _extract_date,
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        jsonb_build_object(
            'customer_id', customer_id, 'first_name', first_name, 'last_name', last_name, 'email', email,
            'phone', phone, 'address', address, 'city', city, 'state', state, 'region', region,
            'signup_date', signup_date, 'updated_at', updated_at
        ) as record
    from exact_copies
)

select * from final
