-- Model of silver.customers for one extract date: every bronze line of the
-- date's customer loads, typed and cleaned. The silver task provides two CTEs
-- (sql/silver/steps/lines.sql): `source`, the date's bronze lines, and `lines`,
-- the same with copy_number, first_copy and key_rank, which every model passes
-- through (a quarantined row's record is read back from bronze by its line).
-- This model builds those columns itself from `key_ranks` (the ranks of the few
-- lines whose key repeats), so that its cleaning runs in parallel (see cleaned).
-- The task then evaluates the quality rules on this and merges the survivors.
-- Parameters: %(calling_code)s, %(national_digits)s, and the source's settings
-- (sources.toml): %(time_zone)s, %(day_first)s, %(epoch)s, and the region
-- vocabulary as two arrays, %(region_spellings)s and %(region_values)s.
with

-- Signup dates repeat a lot: each distinct text is parsed once.
signup_dates as (
    select
        signup_date as signup_date_text,
        silver.parse_date(signup_date, %(day_first)s) as signup_date
    from (select distinct signup_date from source) as distinct_values
),

-- Each spelling of the source's region vocabulary with the value it stands for.
region_vocabulary as (
    select distinct
        silver.vocabulary_key(vocabulary.spelling) as region_key,
        vocabulary.region
    from unnest(%(region_spellings)s::text[], %(region_values)s::text[]) as vocabulary (spelling, region)
),

-- Regions repeat a lot: each distinct text is looked up once.
regions as (
    select
        distinct_values.region as region_text,
        region_vocabulary.region
    from (select distinct region from source) as distinct_values
    left join region_vocabulary
        on silver.vocabulary_key(distinct_values.region) = region_vocabulary.region_key
),

-- Only the bronze line in the from clause, and "offset 0" so the planner keeps
-- it a separate step: PostgreSQL then spreads this function-heavy projection over
-- parallel workers; ranks and dates join after.
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
        source.region as region_text,
        nullif(btrim(source.region), '') as region_raw,
        source.signup_date as signup_date_text,
        nullif(btrim(source.signup_date), '') as signup_date_raw,
        silver.parse_timestamp(source.updated_at, %(time_zone)s, %(epoch)s) as updated_at,
        nullif(btrim(source.updated_at), '') as updated_at_raw,
        source._extract_date,
        source._load_id,
        source._line_number
    from source
    offset 0
),

final as (
    select
        cleaned.customer_id,
        cleaned.first_name,
        cleaned.last_name,
        cleaned.email,
        cleaned.phone,
        cleaned.phone_raw,
        cleaned.address,
        cleaned.city,
        cleaned.state,
        regions.region,
        cleaned.region_raw,
        cleaned.phone is not null as is_phone_valid,
        signup_dates.signup_date,
        cleaned.signup_date_raw,
        cleaned.updated_at,
        cleaned.updated_at_raw,
        cleaned._extract_date,
        cleaned._load_id,
        cleaned._line_number,
        coalesce(key_ranks.copy_number, 1) as copy_number,
        key_ranks.first_copy,
        coalesce(key_ranks.key_rank, 1) as key_rank
    from cleaned
    left join key_ranks
        on cleaned._load_id = key_ranks._load_id
        and cleaned._line_number = key_ranks._line_number
    left join signup_dates
        on cleaned.signup_date_text = signup_dates.signup_date_text
    left join regions
        on cleaned.region_text = regions.region_text
)

select * from final
