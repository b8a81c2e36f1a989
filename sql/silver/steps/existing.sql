-- Winners whose key silver already holds, with the line silver holds and which is newer.
create temp table existing on commit drop as
select
    stage.{key},
    stage._load_id,
    stage._line_number,
    stage._extract_date,
    current_row._load_id as current_load_id,
    current_row._line_number as current_line_number,
    current_row._extract_date as current_extract_date,
    {newer} > {current} as is_newer,
    (current_row._load_id, current_row._line_number) = (stage._load_id, stage._line_number) as is_same_line
from stage
inner join {target} as current_row
    on current_row.{key} = stage.{key}
where {winner}
