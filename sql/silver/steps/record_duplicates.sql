-- Every line of the extract that is neither the silver row of its key nor
-- quarantined, and every silver line this extract replaces.
insert into silver.duplicates (
    run_id, source_table, load_id, line_number, extract_date, business_key, kind, duplicate_of
)
select
    %(run_id)s,
    {table},
    load_id,
    line_number,
    extract_date,
    business_key,
    kind,
    duplicate_of
from (
    -- byte-identical copies of an earlier line
    select
        _load_id as load_id,
        _line_number as line_number,
        _extract_date as extract_date,
        {key} as business_key,
        'exact_duplicate' as kind,
        'line ' || first_copy as duplicate_of
    from stage
    where copy_number > 1

    union all

    -- older versions of a key within the extract
    select _load_id, _line_number, _extract_date, {key}, 'superseded', 'line ' || newest_line
    from versions
    where version_rank > 1

    union all

    -- silver lines replaced by this extract's newer version
    select
        current_load_id, current_line_number, current_extract_date, {key}, 'superseded',
        'line ' || _load_id || ':' || _line_number
    from existing
    where is_newer and not is_same_line

    union all

    -- this extract's lines older than what silver holds
    select
        _load_id, _line_number, _extract_date, {key}, 'superseded',
        'line ' || current_load_id || ':' || current_line_number
    from existing
    where not is_newer and not is_same_line
) as recorded
