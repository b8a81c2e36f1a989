-- Write strategy "upsert" (type 1): the model's rows replace the table's rows of
-- the same {key}; a row that would not change is not written.
insert into {table} as current_row ({columns})
select {columns} from ({model}) as model
on conflict ({key}) do update set
    ({values}) = row({excluded})
where ({current}) is distinct from ({excluded})
