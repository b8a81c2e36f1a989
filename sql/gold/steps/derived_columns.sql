-- After an incremental_sum: columns computed from the summed ones (shares,
-- averages, a cohort's size) or from a dimension, set from the select
-- sql/gold/derived/<table>.sql where they differ.
update {table} as current_row
set ({values}) = row({derived})
from ({model}) as derived
where ({match})
    and ({current}) is distinct from ({derived})
