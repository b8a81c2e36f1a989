-- Write strategy "replace_partition": the table's rows of the run date
-- ({partition} = the date) are replaced by the model's rows.
delete from {table} where {partition} = %(date)s;

insert into {table} ({columns})
select {columns} from ({model}) as model
