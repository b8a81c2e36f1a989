-- One schema per medallion layer, plus meta for run bookkeeping and markers.
create schema if not exists bronze;
create schema if not exists silver;
create schema if not exists gold;
create schema if not exists meta;
create schema if not exists luigi_history;  -- luigid's task history ([task_history] db_connection)

-- The collation the cleaning functions (040_cleaning.sql) map case under, chosen once per database
-- from what the server has, so that names and emails clean the same on PostgreSQL 15 to 18:
-- PostgreSQL's own "pg_c_utf8" (17 and later), else the C library's C.UTF-8 (15 and 16; glibc has
-- it). Both map the case of every letter a name is written in the same way, and split words for
-- initcap at any character that is not a letter or a digit ("O'Brien"). ICU's "und" is no
-- substitute: its initcap keeps "O'brien" together and upper('ß') is 'SS'.
do $$
begin
    if to_regcollation('silver.unicode_case') is not null then
        return;
    end if;
    if to_regcollation('pg_catalog.pg_c_utf8') is not null then
        create collation silver.unicode_case from "pg_c_utf8";
        return;
    end if;
    begin
        create collation silver.unicode_case (provider = libc, locale = 'C.UTF-8');
    exception when others then
        raise exception 'no Unicode case mapping on this server: it has neither the pg_c_utf8 collation '
            '(PostgreSQL 17 and later) nor the C.UTF-8 locale (%)', sqlerrm
            using hint = 'install the C.UTF-8 locale on the database host (glibc-based systems have it), '
                'or use PostgreSQL 17 or later';
    end;
end
$$;
