-- This extract's own lines recorded as duplicates: exact copies, then superseded ones.
select
    (select count(*) from stage where copy_number > 1) as exact_copies,
    (select count(*) from versions where version_rank > 1)
    + (select count(*) from existing where not is_newer and not is_same_line) as superseded
