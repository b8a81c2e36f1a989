-- Write strategy "scd2": the model gives every version the dimension should hold
-- for the keys it covers ({key}, valid_from, ..., is_current, valid_to). A
-- version is matched on ({key}, valid_from): those of the covered keys that the
-- model no longer gives are deleted, changed ones updated, new ones inserted, so
-- the table's surrogate keys of unchanged versions stay.
create temp table desired_versions on commit drop as
{model};

delete from {table} as current_version
where current_version.{key} in (select {key} from desired_versions)
    and (current_version.{key}, current_version.valid_from) not in (
        select {key}, valid_from from desired_versions
    );

update {table} as current_version
set ({values}) = row({desired})
from desired_versions as desired
where current_version.{key} = desired.{key}
    and current_version.valid_from = desired.valid_from
    and ({current}) is distinct from ({desired});

insert into {table} ({columns})
select {columns}
from desired_versions as desired
where not exists (
    select 1 from {table} as current_version
    where current_version.{key} = desired.{key}
        and current_version.valid_from = desired.valid_from
)
