-- Model of silver.customers for one extract date: every bronze line of the
-- date's customer loads, typed and cleaned. The silver task provides two CTEs
-- (sql/silver/steps/lines.sql): `source`, the date's bronze lines, and `lines`,
-- the same with copy_number, first_copy, key_rank and source_line (the line as
-- loaded, kept only for quarantined rows), which every model passes through.
-- The task then evaluates the quality rules on this and merges the survivors.
-- Parameters: %(calling_code)s, %(national_digits)s.
with

-- Signup dates repeat a lot: each distinct text is parsed once.
signup_dates as (
    select
        signup_date as signup_date_text,
        silver.parse_date(signup_date) as signup_date
    from (select distinct signup_date from source) as distinct_values
),

cleaned as (
    select
        nullif(btrim(source.customer_id), '') as customer_id,
        silver.clean_name(source.first_name) as first_name,
        silver.clean_name(source.last_name) as last_name,
        silver.clean_email(source.email) as email,
        silver.phone_e164(source.phone, %(calling_code)s, %(national_digits)s) as phone,
        nullif(btrim(source.phone), '') as phone_raw,
        nullif(regexp_replace(btrim(source.address), '[ \t]+', ' ', 'g'), '') as address,
        silver.clean_name(source.city) as city,
        upper(nullif(btrim(source.state), '')) as state,
        silver.canonical_region(source.region) as region,
        nullif(btrim(source.region), '') as region_raw,
        signup_dates.signup_date,
        nullif(btrim(source.signup_date), '') as signup_date_raw,
        silver.parse_timestamp(source.updated_at) as updated_at,
        nullif(btrim(source.updated_at), '') as updated_at_raw,
        source._extract_date,
        source._load_id,
        source._line_number,
        source.copy_number,
        source.first_copy,
        source.key_rank,
        source.source_line
    from lines as source
    left join signup_dates
        on source.signup_date = signup_dates.signup_date_text
),

final as (
    select
        customer_id,
        first_name,
        last_name,
        email,
        phone,
        phone_raw,
        address,
        city,
        state,
        region,
        region_raw,
        phone is not null as is_phone_valid,
        signup_date,
        signup_date_raw,
        updated_at,
        updated_at_raw,
        _extract_date,
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        key_rank,
        source_line
    from cleaned
)

select * from final
