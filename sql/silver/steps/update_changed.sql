update {target} as current_row
set {updates}
from stage
inner join existing
    on existing._load_id = stage._load_id
    and existing._line_number = stage._line_number
where existing.is_newer
    and current_row.{key} = stage.{key}
