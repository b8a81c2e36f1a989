-- One schema per medallion layer, plus meta for run bookkeeping and markers.
create schema if not exists bronze;
create schema if not exists silver;
create schema if not exists gold;
create schema if not exists meta;
create schema if not exists luigi_history;  -- luigid's task history ([task_history] db_connection)
