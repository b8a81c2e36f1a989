-- Every surviving line of the extract (exact copies and dropped rows aside),
-- older versions of a key included: the customer history gold's SCD2 reads.
insert into {versions} ({columns})
select {columns}
from stage
where copy_number = 1
    and cardinality(failed_drop) = 0
