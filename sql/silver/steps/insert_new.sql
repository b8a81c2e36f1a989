-- New keys: a plain insert; merges into one silver table are serialized by an advisory lock.
insert into {target} ({columns})
select {values}
from stage
where {winner}
    and stage.{key} not in (select {key} from existing)
