-- SCD Type 2 for the customers that have a version in this date's extract,
-- rebuilt from every version silver has of them (silver.customer_versions), so
-- that any order of dates, reprocessing and late-arriving versions ends in the
-- same dimension. Consecutive versions with the same tracked attributes are one
-- version; an unchanged re-send adds nothing. A version's keys are stable: rows
-- are matched on (customer_id, valid_from).
create temp table touched_customers on commit drop as
select distinct customer_id
from silver.customer_versions
where _extract_date = %(date)s;

create temp table desired_versions on commit drop as
with

versions as (
    select
        customer_id,
        first_name,
        last_name,
        email,
        phone,
        city,
        state,
        region,
        md5(concat_ws('|', first_name, last_name, email, phone, city, state, region)) as attribute_hash,
        updated_at,
        _extract_date,
        _load_id,
        _line_number
    from silver.customer_versions
    where customer_id in (select customer_id from touched_customers)
        and updated_at is not null
),

-- the same instant sent twice: the later line stands
per_instant as (
    select distinct on (customer_id, updated_at) *
    from versions
    order by customer_id, updated_at, _extract_date desc, _load_id desc, _line_number desc
),

changes as (
    select
        per_instant.*,
        lag(attribute_hash) over (partition by customer_id order by updated_at) as previous_hash
    from per_instant
),

starts as (
    select * from changes where previous_hash is distinct from attribute_hash
)

select
    customer_id,
    first_name,
    last_name,
    email,
    phone,
    city,
    state,
    region,
    attribute_hash,
    lead(updated_at) over (partition by customer_id order by updated_at) is null as is_current,
    updated_at as valid_from,
    lead(updated_at) over (partition by customer_id order by updated_at) as valid_to
from starts;

delete from gold.dim_customer as current_version
where current_version.customer_id in (select customer_id from touched_customers)
    and (current_version.customer_id, current_version.valid_from) not in (
        select customer_id, valid_from from desired_versions
    );

update gold.dim_customer as current_version
set
    first_name = desired.first_name,
    last_name = desired.last_name,
    email = desired.email,
    phone = desired.phone,
    city = desired.city,
    state = desired.state,
    region = desired.region,
    attribute_hash = desired.attribute_hash,
    is_current = desired.is_current,
    valid_to = desired.valid_to
from desired_versions as desired
where current_version.customer_id = desired.customer_id
    and current_version.valid_from = desired.valid_from
    and (current_version.attribute_hash, current_version.is_current, current_version.valid_to)
        is distinct from (desired.attribute_hash, desired.is_current, desired.valid_to);

insert into gold.dim_customer (
    customer_id, first_name, last_name, email, phone, city, state, region, attribute_hash, is_current,
    valid_from, valid_to
)
select desired.*
from desired_versions as desired
where not exists (
    select 1 from gold.dim_customer as current_version
    where current_version.customer_id = desired.customer_id
        and current_version.valid_from = desired.valid_from
)
