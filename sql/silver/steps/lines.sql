source as not materialized (
    select
        raw_rows.*,
        %(date)s::date as _extract_date
    from {raw} as raw_rows
    where raw_rows._load_id = any(%(loads)s)
),

repeated_keys as (
    select nullif(btrim({key}), '') as {key}
    from source
    group by 1
    having count(*) > 1
),

repeated_lines as (
    select
        source.*,
        nullif(btrim(source.{key}), '') as clean_key
    from source
    where nullif(btrim(source.{key}), '') is null
        or nullif(btrim(source.{key}), '') in (select repeated_keys.{key} from repeated_keys)
),

exact_copies as (
    select
        _load_id,
        _line_number,
        clean_key,
        row_number() over same_line as copy_number,
        first_value(_load_id || ':' || _line_number) over same_line as first_copy
    from repeated_lines
    window same_line as (partition by {raw_columns} order by _load_id, _line_number)
),

key_ranks as (
    select
        _load_id,
        _line_number,
        copy_number,
        first_copy,
        row_number() over (
            partition by clean_key order by copy_number > 1, _load_id, _line_number
        ) as key_rank
    from exact_copies
),

-- Every line with its copy number, first copy and key rank.
lines as (
    select
        source.*,
        coalesce(key_ranks.copy_number, 1) as copy_number,
        key_ranks.first_copy,
        coalesce(key_ranks.key_rank, 1) as key_rank
    from source
    left join key_ranks
        on source._load_id = key_ranks._load_id
        and source._line_number = key_ranks._line_number
)
