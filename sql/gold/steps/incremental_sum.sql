-- Write strategy "incremental_sum": the model gives, per group ({key}), the change
-- of each measure over a catch-up with the fact (sql/gold/steps/fact_delta.sql):
-- the measures over the +1 lines minus the same over the -1 lines. They are added
-- to the table's; a group whose first measure (its count of lines or customers)
-- falls to 0 is removed. Other model columns are written when a group first
-- appears.
insert into {table} as current_row ({columns})
select {columns} from ({model}) as model
on conflict ({key}) do update set
    ({measures}) = row({sums});

delete from {table} where {count} = 0
