-- Model of silver.customers for one extract date: every bronze line of the
-- date's customer loads, typed and cleaned. The silver task (pipeline/tasks_silver.py,
-- lines_ctes) provides two CTEs: `source`, the date's bronze lines, and `key_ranks`,
-- the copy number, first copy and key rank of the few lines whose key repeats. The
-- task then evaluates the quality rules on this and merges the survivors.
-- Parameters: %(calling_code)s, %(national_digits)s.
with

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
        coalesce(copy_number, 1) as copy_number,
        first_copy,
        coalesce(key_rank, 1) as key_rank
    from source
    left join key_ranks using (_load_id, _line_number)
)

select * from final
