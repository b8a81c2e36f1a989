-- SCD Type 2 for the customers that have a version in this date's extract,
-- rebuilt from every version silver has of them (silver.customer_versions), so
-- that any order of dates, reprocessing and late-arriving versions ends in the
-- same dimension. Consecutive versions with the same tracked attributes are one
-- version; an unchanged re-send adds nothing. A version's keys are stable: rows
-- are matched on (customer_id, valid_from).
--
-- Deletes (a database source's key snapshots, silver.deletions) close the
-- version current at the deletion (valid_to = deleted_at, no current row while
-- deleted); a key that comes back starts a new version, with its new attributes,
-- or its last ones when it came back unchanged.
--
-- The select gives every version of the touched customers; the scd2 write
-- strategy (sql/gold/steps/scd2.sql) makes the dimension hold exactly those.
-- The tracked attributes are named twice: in their hash, which finds the
-- changes, and in the final select, which reads them from the silver version
-- each dimension version starts at (its primary key travels along).
with

touched_customers as (
    select customer_id
    from silver.customer_versions
    where _extract_date = %(date)s
    union
    select deletion.business_key
    from silver.deletions as deletion
    inner join meta.ingested_files as files
        on files.load_id in (deletion.deleted_load_id, deletion.restored_load_id)
    where deletion.source_table = 'silver.customers'
        and files.extract_date = %(date)s
),

versions as (
    select
        customer_id,
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

deletions as (
    select
        business_key as customer_id,
        deleted_at,
        restored_at
    from silver.deletions
    where source_table = 'silver.customers'
        and business_key in (select customer_id from touched_customers)
),

-- a key back without a new version at its return: its last attributes again
returns_unchanged as (
    select distinct on (deletions.customer_id, deletions.restored_at)
        per_instant.customer_id,
        per_instant.attribute_hash,
        per_instant._load_id,
        per_instant._line_number,
        deletions.restored_at as event_at
    from deletions
    inner join per_instant
        on deletions.customer_id = per_instant.customer_id
        and per_instant.updated_at <= deletions.restored_at
    where not exists (
        select 1 from per_instant as at_return
        where at_return.customer_id = deletions.customer_id
            and at_return.updated_at = deletions.restored_at
    )
    order by deletions.customer_id, deletions.restored_at, per_instant.updated_at desc
),

events as (
    select customer_id, attribute_hash, _load_id, _line_number, updated_at as event_at, false as is_deletion
    from per_instant

    union all

    select customer_id, attribute_hash, _load_id, _line_number, event_at, false as is_deletion
    from returns_unchanged

    union all

    select customer_id, null, null, null, deleted_at as event_at, true as is_deletion
    from deletions
),

-- a deletion has no attributes, so the first version after it always starts anew
changes as (
    select
        events.*,
        lag(attribute_hash) over (partition by customer_id order by event_at, is_deletion) as previous_hash
    from events
),

starts_and_ends as (
    select * from changes where is_deletion or previous_hash is distinct from attribute_hash
),

timeline as (
    select
        starts_and_ends.*,
        lead(event_at) over (partition by customer_id order by event_at, is_deletion) as next_event_at
    from starts_and_ends
),

-- a version ends where the next one starts or where the customer was deleted
final as (
    select
        timeline.customer_id,
        version.first_name,
        version.last_name,
        version.email,
        version.phone,
        version.city,
        version.state,
        version.region,
        timeline.attribute_hash,
        timeline.next_event_at is null as is_current,
        timeline.event_at as valid_from,
        timeline.next_event_at as valid_to
    from timeline
    inner join silver.customer_versions as version
        on timeline._load_id = version._load_id
        and timeline._line_number = version._line_number
    where not timeline.is_deletion
)

select * from final
