-- Surviving lines of keys used more than once in this extract (few), ranked newest first.
create temp table versions on commit drop as
with

lines as materialized (
    select {line_columns}
    from stage
    where copy_number = 1
        and cardinality(failed_drop) = 0
        and {key} in (select {key} from stage where key_rank > 1)
)

select
    {key},
    _load_id,
    _line_number,
    _extract_date,
    row_number() over newest as version_rank,
    first_value(_load_id || ':' || _line_number) over newest as newest_line
from lines
window newest as (partition by {key} order by {newest_first})
