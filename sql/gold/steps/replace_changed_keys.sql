-- Write strategy "replace_changed_keys": the rows of every {key} with a line in a
-- catch-up with the fact (fact_lines, sql/gold/steps/fact_delta.sql) are rebuilt:
-- deleted, then the model's rows inserted (a full build starts from an empty table).
delete from {table}
where not %(full)s
    and {key} in (select {key} from fact_lines);

insert into {table} ({columns})
select {columns} from ({model}) as model
