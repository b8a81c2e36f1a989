-- An older extract of a key merged after a newer one still moves first_extract_date back.
update {target} as current_row
set first_extract_date = existing._extract_date
from existing
where not existing.is_newer
    and current_row.{key} = existing.{key}
    and existing._extract_date < current_row.first_extract_date
