-- "offset 0" keeps the planner from copying each rule's predicate into the
-- arrays; the pass_N columns are not stored, only the names of failed rules.
create temp table stage on commit drop as
with

model as {materialized} (
    with {lines}
    select * from ({model}) as cleaned
){helpers}

select
    {model_columns},
    {failed_drop} as failed_drop,
    {failed_other} as failed_other,
    {drop_reasons} as drop_reasons
from (select model.*{passes} from model offset 0) as evaluated
